package proxy_test

// Micro-benchmarks of the request hot path without sockets (issue 7). The end-to-end
// harness is `go run ./bench`; these isolate what signet does per request:
//
//	go test ./proxy -run XXX -bench . -benchmem
//	go test ./proxy -run XXX -bench ServeHTTP/get -cpuprofile cpu.out && go tool pprof -top proxy.test cpu.out
//
// The upstream is an in-process RoundTripper answering 200 with a canned body, so each
// benchmark measures parse, route, strip, sign, ReverseProxy's copying and the request log
// (formatted by the text handler `signet serve` uses, then discarded). The fake upstream's
// own work (a Response, its Header and body reader: 4 allocations) is included in every
// figure, as is the same in the bare-hop yardstick it is compared with.

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/proxy"
)

const benchConfig = `
accounts:
  up:
    endpoint: http://127.0.0.1:7070
    region: us-east-1
    credentials: {access_key_id: bench-key, secret_access_key: bench-secret}
buckets:
  - {name: bench, account: up}
  - {name: "logs-*", account: up}
`

// benchSignet is a Handler for benchConfig whose upstream is rt.
func benchSignet(b testing.TB, rt http.RoundTripper) http.Handler {
	b.Helper()
	cfg, err := config.Parse("bench.yaml", []byte(benchConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	// Static credentials, as the config's literal ones become: the benchmark measures the
	// hot path, not credential sources.
	providers := map[string]creds.Provider{"up": creds.NewStatic("bench-key", "bench-secret", "")}
	table, err := proxy.NewTable(cfg, providers)
	if err != nil {
		b.Fatal(err)
	}
	// As `signet serve` runs by default: metrics on, a body idle timeout.
	m := proxy.NewMetrics(prometheus.NewRegistry(), func() *proxy.Table { return table })
	return proxy.New(table, proxy.Options{Transport: rt, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: m, BodyIdleTimeout: time.Minute})
}

// benchBareHop is the yardstick of `go run ./bench`: a ReverseProxy that strips the
// client's authentication and signs with the v4 signer, with pooled 256 KiB copy buffers,
// nothing else.
func benchBareHop(rt http.RoundTripper) http.Handler {
	target := &url.URL{Scheme: "http", Host: "127.0.0.1:7070"}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	c := aws.Credentials{AccessKeyID: "bench-key", SecretAccessKey: "bench-secret"}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"} {
				pr.Out.Header.Del(h)
			}
			pr.Out.Header.Del("Content-Length")
		},
		BufferPool: &benchPool{},
		Transport: benchRoundTripper(func(req *http.Request) (*http.Response, error) {
			req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			if err := signer.SignHTTP(req.Context(), c, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
				return nil, err
			}
			return rt.RoundTrip(req)
		}),
	}
}

// benchPool is the bare hop's buffer pool: 256 KiB buffers in a sync.Pool.
type benchPool struct{ p sync.Pool }

func (b *benchPool) Get() []byte {
	if bp, ok := b.p.Get().(*[]byte); ok {
		return *bp
	}
	return make([]byte, 256<<10)
}

func (b *benchPool) Put(buf []byte) { b.p.Put(&buf) }

type benchRoundTripper func(*http.Request) (*http.Response, error)

func (f benchRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// cannedUpstream answers every request with 200 and body, after reading the request body
// as a transport would.
type cannedUpstream struct{ body []byte }

func (u cannedUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Length": {strconv.Itoa(len(u.body))},
			"Etag":           {`"0123456789abcdef0123456789abcdef"`},
		},
		Body:          io.NopCloser(bytes.NewReader(u.body)),
		ContentLength: int64(len(u.body)),
		Request:       req,
	}, nil
}

// benchWriter is a ResponseWriter that keeps nothing but its header map, reused.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// SetReadDeadline and SetWriteDeadline succeed, as on a server's connection, for the
// Handler's body idle timeout.
func (w *benchWriter) SetReadDeadline(time.Time) error  { return nil }
func (w *benchWriter) SetWriteDeadline(time.Time) error { return nil }

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// rewindBody is a request body that can be read again, without allocating per request.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// sdkHeaders are what aws-sdk-go-v2 sends with a GetObject, dummy-signed: signet strips
// the authentication and forwards and signs the rest.
var sdkHeaders = http.Header{
	"Authorization":          {"AWS4-HMAC-SHA256 Credential=x/20250101/us-east-1/s3/aws4_request, SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;host;x-amz-content-sha256;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000"},
	"X-Amz-Date":             {"20250101T000000Z"},
	"X-Amz-Content-Sha256":   {"UNSIGNED-PAYLOAD"},
	"User-Agent":             {"aws-sdk-go-v2/1.36.3 ua/2.1 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/s3#1.79.2 m/E"},
	"Amz-Sdk-Invocation-Id":  {"8a3b1c2d-0000-4000-8000-000000000000"},
	"Amz-Sdk-Request":        {"attempt=1; max=3"},
	"Accept-Encoding":        {"identity"},
	"X-Amz-Checksum-Mode":    {"ENABLED"},
	"X-Amz-Meta-Ignored-Get": {"x"},
}

// BenchmarkServeHTTP: one request through the handler, signet against the bare hop.
func BenchmarkServeHTTP(b *testing.B) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096/16)
	up := cannedUpstream{body: payload}
	tests := []struct {
		name    string
		method  string
		target  string
		headers http.Header
		body    []byte
		status  int
	}{
		{name: "get", method: http.MethodGet, target: "/bench/some/key.txt", status: http.StatusOK},
		{name: "get-sdk-headers", method: http.MethodGet, target: "/bench/some/key.txt", headers: sdkHeaders, status: http.StatusOK},
		{name: "put-4KiB", method: http.MethodPut, target: "/bench/some/key.txt", body: payload, status: http.StatusOK},
		{name: "get-glob-route", method: http.MethodGet, target: "/logs-2025/some/key.txt", status: http.StatusOK},
		// Parse, route and signet's own XML error; the upstream is never reached.
		{name: "unrouted", method: http.MethodGet, target: "/nobucket/some/key.txt", status: http.StatusNotFound},
	}
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"signet", benchSignet(b, up)},
		{"barehop", benchBareHop(up)},
	}
	for _, tt := range tests {
		for _, hh := range handlers {
			if tt.name == "unrouted" && hh.name == "barehop" {
				continue // the bare hop routes nothing
			}
			b.Run(tt.name+"/"+hh.name, func(b *testing.B) {
				// Parsed from the wire, as the server does: origin-form URL, RequestURI, Host.
				tmpl, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.method + " " + tt.target + " HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n")))
				if err != nil {
					b.Fatal(err)
				}
				for k, v := range tt.headers {
					tmpl.Header[k] = v
				}
				body := &rewindBody{}
				w := &benchWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					req := *tmpl // the server makes a request per request; the header map is not written to
					if tt.body != nil {
						body.Reset(tt.body)
						req.Body, req.ContentLength = body, int64(len(tt.body))
					} else {
						req.Body = http.NoBody
					}
					w.reset()
					hh.h.ServeHTTP(w, &req)
					if w.status != tt.status {
						b.Fatalf("status %d, want %d", w.status, tt.status)
					}
				}
			})
		}
	}
}

// BenchmarkLargeUpload: an 8 MiB PUT through the handler, plain and as an aws-chunked body
// with a CRC32 trailer (decoded, verified and re-framed with the trailer for the upstream),
// against the bare hop's plain PUT: what re-framing costs per byte.
func BenchmarkLargeUpload(b *testing.B) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), (8<<20)/16)
	chunked := unsignedTrailerBody(payload, 64<<10, nil)
	up := cannedUpstream{}
	tests := []struct {
		name    string
		h       http.Handler
		body    []byte
		headers http.Header
	}{
		{"plain/signet", benchSignet(b, up), payload, nil},
		{"plain/barehop", benchBareHop(up), payload, nil},
		{"aws-chunked-trailer/signet", benchSignet(b, up), chunked, http.Header{
			"Content-Encoding": {"aws-chunked"}, "X-Amz-Content-Sha256": {"STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
			"X-Amz-Decoded-Content-Length": {strconv.Itoa(len(payload))}, "X-Amz-Trailer": {"x-amz-checksum-crc32"},
		}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			tmpl, err := http.ReadRequest(bufio.NewReader(strings.NewReader("PUT /bench/big.bin HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n")))
			if err != nil {
				b.Fatal(err)
			}
			maps.Copy(tmpl.Header, tt.headers)
			body := &rewindBody{}
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				req := *tmpl
				body.Reset(tt.body)
				req.Body, req.ContentLength = body, int64(len(tt.body))
				w.reset()
				tt.h.ServeHTTP(w, &req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
