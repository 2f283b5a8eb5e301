package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// profileEnv names a directory; when set, the harness's own roles (null, barehop) write a
// CPU profile of their whole life there, as <role>-<pid>.pprof.
const profileEnv = "SIGNET_BENCH_CPUPROFILE"

const unsignedPayload = "UNSIGNED-PAYLOAD"

// runRole runs one of the harness's subprocess roles until SIGTERM or SIGINT: the harness
// re-executes itself with -role so that each server's CPU and memory are its own process's.
func runRole(role string, args []string) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir := os.Getenv(profileEnv); dir != "" {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", role, os.Getpid())))
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("cpu profile: %w", cerr)
			}
		}()
	}
	switch role {
	case "null":
		return serveNull(ctx, args)
	case "barehop":
		return serveBareHop(ctx, args)
	default:
		return fmt.Errorf("unknown role %q (null, barehop)", role)
	}
}

// serveRole serves h on listen until ctx ends, logging the address as signet does; over
// TLS (HTTP/2 and HTTP/1.1, as Go's server offers them) when certFile is set.
func serveRole(ctx context.Context, listen string, h http.Handler, certFile, keyFile string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	slog.New(slog.NewTextHandler(os.Stderr, nil)).Info("listening", slog.String("addr", ln.Addr().String()))
	served := make(chan error, 1)
	go func() {
		if certFile != "" {
			served <- srv.ServeTLS(ln, certFile, keyFile)
			return
		}
		served <- srv.Serve(ln)
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// serveNull is the null S3 endpoint: it discards PUT bodies and answers GET obj-<size> with
// that object's deterministic content. It checks no signature, so what is measured in front
// of it is the proxy's own cost.
func serveNull(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("null", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	cert := fs.String("cert", "", "serve TLS with this certificate (PEM)")
	key := fs.String("key", "", "and this key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serveRole(ctx, *listen, newNullS3(), *cert, *key)
}

// nullBufSize is the null upstream's read and write size for large bodies.
const nullBufSize = 256 << 10

// nullSmallMax: objects up to this size are served from memory, larger ones generated.
const nullSmallMax = 1 << 20

type nullS3 struct {
	mu       sync.Mutex
	contents map[int64]*content
	small    map[int64][]byte
	bufs     sync.Pool // *[]byte of nullBufSize
}

func newNullS3() *nullS3 {
	return &nullS3{contents: map[int64]*content{}, small: map[int64][]byte{}}
}

func (n *nullS3) object(size int64) (*content, []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.contents[size]
	if c == nil {
		c = newContent(size)
		n.contents[size] = c
		if size <= nullSmallMax {
			n.small[size] = c.bytes()
		}
	}
	return c, n.small[size]
}

func (n *nullS3) buf() *[]byte {
	if b, ok := n.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, nullBufSize)
	return &b
}

func (n *nullS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch r.Method {
	case http.MethodPut:
		bp := n.buf()
		defer n.bufs.Put(bp)
		var got int64
		for {
			k, err := r.Body.Read(*bp)
			got += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		if r.ContentLength >= 0 && got != r.ContentLength {
			http.Error(w, fmt.Sprintf("body is %d bytes, Content-Length %d", got, r.ContentLength), http.StatusBadRequest)
			return
		}
		w.Header().Set("ETag", `"null"`)
		w.WriteHeader(http.StatusOK)
	case http.MethodGet, http.MethodHead:
		size, ok := sizeFromKey(key)
		if !ok {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "<Error><Code>NoSuchKey</Code></Error>")
			return
		}
		c, small := n.object(size)
		h := w.Header()
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Type", "application/octet-stream")
		h.Set("ETag", `"null"`)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		if small != nil {
			_, _ = w.Write(small)
			return
		}
		bp := n.buf()
		defer n.bufs.Put(bp)
		for off := int64(0); off < size; {
			p := (*bp)[:min(int64(len(*bp)), size-off)]
			c.fill(p, off)
			if _, err := w.Write(p); err != nil {
				return // the client went away
			}
			off += int64(len(p))
		}
	case http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// serveBareHop is the yardstick: the least a re-signing proxy must do, done well. An
// httputil.ReverseProxy whose Rewrite points the request at the upstream and strips the
// client's authentication, and whose transport signs with aws-sdk-go-v2's v4 signer and
// static credentials; 256 KiB pooled copy buffers and 1024 idle upstream connections, as
// the independent harness of issue 16 configured it. Nothing else: no routing, parsing or
// logging.
//
// Before issue 16 it had no buffer pool: ReverseProxy then allocates a 32 KiB copy buffer
// per response, whose garbage collection made the yardstick some 15 % dearer per small
// request than a well-set hop, and signet looked cheaper than it by as much.
func serveBareHop(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("barehop", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	upstream := fs.String("upstream", "", "upstream endpoint, http://host:port")
	region := fs.String("region", "us-east-1", "signing region")
	accessKey := fs.String("access-key", "", "access key id")
	secretKey := fs.String("secret-key", "", "secret access key")
	ca := fs.String("ca", "", "trust this CA (PEM) for an https upstream")
	h2 := fs.Bool("h2", false, "offer HTTP/2 to an https upstream (default HTTP/1.1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := url.Parse(*upstream)
	if err != nil || target.Scheme == "" || target.Host == "" {
		return fmt.Errorf("-upstream %q is not scheme://host:port", *upstream)
	}
	tr := newBareTransport()
	if tr.TLSClientConfig, err = clientTLS(*ca); err != nil {
		return err
	}
	tr.ForceAttemptHTTP2 = *h2
	defer tr.CloseIdleConnections()
	c := aws.Credentials{AccessKeyID: *accessKey, SecretAccessKey: *secretKey, Source: "static"}
	return serveRole(ctx, *listen, newBareHop(target, c, *region, tr), "", "")
}

// newBareHop is the bare hop's handler, sending to target through next.
func newBareHop(target *url.URL, c aws.Credentials, region string, next http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			for _, h := range clientAuthHeaders {
				pr.Out.Header.Del(h)
			}
			pr.Out.Header.Del("Content-Length") // sent and signed from Out.ContentLength
		},
		BufferPool: &barePool{},
		Transport: &bareSigner{
			next:   next,
			signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }),
			creds:  c,
			region: region,
		},
	}
}

// barePool lends ReverseProxy 256 KiB copy buffers from a sync.Pool.
type barePool struct{ p sync.Pool }

func (b *barePool) Get() []byte {
	if bp, ok := b.p.Get().(*[]byte); ok {
		return *bp
	}
	return make([]byte, bareBufSize)
}

func (b *barePool) Put(buf []byte) { b.p.Put(&buf) }

const bareBufSize = 256 << 10

// clientAuthHeaders are the headers that carry a client's own authentication.
var clientAuthHeaders = []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"}

// newBareTransport is the bare hop's upstream transport: Go's defaults, plus timeouts and
// 1024 idle connections (style.md, Transport).
func newBareTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		DisableCompression:    true,
	}
}

// bareSigner signs each outbound request with UNSIGNED-PAYLOAD, then sends it.
type bareSigner struct {
	next   http.RoundTripper
	signer *v4.Signer // one per credential set (style.md)
	creds  aws.Credentials
	region string
}

func (s *bareSigner) RoundTrip(req *http.Request) (*http.Response, error) {
	req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	if err := s.signer.SignHTTP(req.Context(), s.creds, req, unsignedPayload, "s3", s.region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	return s.next.RoundTrip(req)
}

// roleArgs builds the command line that re-executes the harness as role.
func roleArgs(role string, args ...string) []string {
	return append([]string{"-role", role}, args...)
}
