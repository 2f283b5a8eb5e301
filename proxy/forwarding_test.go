package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/internal/testenv"
	"github.com/signet-proxy/signet/proxy"
)

// TestClientDisconnectCancelsUpstream: a client that goes away mid-request cancels the
// upstream request rather than leaving it running.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	arrived := make(chan struct{})
	cancelled := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
		close(cancelled)
	}))
	t.Cleanup(upstream.Close)
	h := newHandler(t, fmt.Sprintf(`
accounts:
  gw: {endpoint: %q, credentials: {access_key_id: a, secret_access_key: b}}
%s`, upstream.URL, routesYAML))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/alpha/slow", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	<-cancelled // the test would hang here if the upstream request lived on
	if err := <-errc; err == nil {
		t.Error("the cancelled request succeeded")
	}
}

// TestExpectContinueEndToEnd: the client's Expect: 100-continue is answered with the
// upstream's own 100 Continue, so a body is only sent once the upstream wants it.
func TestExpectContinueEndToEnd(t *testing.T) {
	e := newEnv(t, "")
	e.mkBuckets(t, "alpha")
	var got100 bool
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{Got100Continue: func() { got100 = true }})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, e.signet.URL+"/alpha/expect", strings.NewReader("after continue"))
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: 60e9}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !got100 {
		t.Errorf("status %d, got 100 Continue: %v", resp.StatusCode, got100)
	}
	if b := get(t, e.direct(), "alpha", "expect"); string(b) != "after continue" {
		t.Errorf("stored %q", b)
	}
}

// TestAbortedUploadLeavesNothing: a client that sends half its declared body and hangs up
// must not leave a truncated object upstream, nor replace an existing one; over HTTPS too,
// where closing the connection would first send a TLS close_notify, a clean end of stream.
func TestAbortedUploadLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *testenv.VersityGW
	}{
		{"http upstream", testenv.StartVersityGW},
		{"https upstream", testenv.StartVersityGWTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvOn(t, tc.start(t), "")
			e.mkBuckets(t, "alpha")
			put(t, e.s3, "alpha", "existing", []byte("the old version"))
			// signet again, telling when it has finished with each request.
			done := make(chan struct{}, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				e.handler.ServeHTTP(w, r)
				done <- struct{}{}
			}))
			t.Cleanup(srv.Close)

			for _, key := range []string{"fresh", "existing"} {
				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(conn, "PUT /alpha/%s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", key, 8<<20)
				if _, err := conn.Write(make([]byte, 4<<20)); err != nil {
					t.Fatal(err)
				}
				conn.Close()
				<-done
			}
			if fi, err := os.Stat(filepath.Join(e.gw.DataDir, "alpha", "fresh")); err == nil {
				t.Errorf("a truncated upload was stored: %d bytes", fi.Size())
			}
			if b := get(t, e.direct(), "alpha", "existing"); string(b) != "the old version" {
				t.Errorf("existing object became %d bytes", len(b))
			}
		})
	}
}

// TestFailedUploadResetsTLSUpstream: when an upload fails mid-body (the client hangs up,
// or an aws-chunked checksum does not match), the HTTPS upstream sees its connection
// reset, not a clean end of stream. Closing the TLS connection would send a close_notify
// first, which lenient servers (versitygw) take for the end of the body, storing a
// truncated object; Go's server, used here to watch the connection, reports that case as
// io.ErrUnexpectedEOF and a reset as ECONNRESET.
func TestFailedUploadResetsTLSUpstream(t *testing.T) {
	const size = 300000
	data := make([]byte, size)
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", size, data)
	tests := []struct {
		name     string
		request  string
		upstream int  // body bytes the upstream can get before the failure
		hangUp   bool // the client hangs up once the upstream has them
	}{
		{
			name:     "client hangs up",
			request:  fmt.Sprintf("PUT /alpha/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s", size, data[:size/2]),
			upstream: size / 2,
			hangUp:   true,
		},
		{
			name: "aws-chunked checksum mismatch",
			request: fmt.Sprintf("PUT /alpha/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\nContent-Encoding: aws-chunked\r\n"+
				"X-Amz-Content-Sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\nX-Amz-Decoded-Content-Length: %d\r\nX-Amz-Trailer: x-amz-checksum-crc32\r\n\r\n%s",
				len(chunked), size, chunked),
			upstream: size - 1, // the decoder holds the last byte back until the trailer checks out
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan struct{})
			ended := make(chan error, 1)
			upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := io.ReadFull(r.Body, make([]byte, tt.upstream)); err != nil {
					ended <- err // a reset may overtake bytes still in signet's buffers
					return
				}
				close(got)
				_, err := io.Copy(io.Discard, r.Body)
				ended <- err
			}))
			upstream.StartTLS() // HTTP/1.1: httptest enables HTTP/2 only when asked
			t.Cleanup(upstream.Close)
			h := newHandlerWith(t, fmt.Sprintf(`
accounts:
  gw: {endpoint: %q, credentials: {access_key_id: a, secret_access_key: b}}
%s`, upstream.URL, routesYAML), func(o *proxy.Options) {
				tr := proxy.NewTransport(config.Timeouts{})
				tr.TLSClientConfig = upstream.Client().Transport.(*http.Transport).TLSClientConfig
				t.Cleanup(tr.CloseIdleConnections)
				o.Transport = tr
			})
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)

			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tt.request); err != nil {
				t.Fatal(err)
			}
			select {
			case <-got: // the upstream has all it can get, and waits for the rest
				if tt.hangUp {
					conn.Close()
				}
				err = <-ended
			case err = <-ended:
			}
			if errors.Is(err, io.ErrUnexpectedEOF) || err == nil {
				t.Fatalf("the upstream saw the upload end cleanly (%v): a lenient server would store it truncated", err)
			}
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("upstream body read ended with %v, want a connection reset", err)
			}
		})
	}
}

// TestConcurrencyCap: beyond MaxConcurrent requests in flight, signet answers 503 SlowDown
// at once instead of queueing.
func TestConcurrencyCap(t *testing.T) {
	arrived := make(chan struct{}, 2)
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	t.Cleanup(upstream.Close)
	cfg := fmt.Sprintf(`
accounts:
  gw: {endpoint: %q, credentials: {access_key_id: a, secret_access_key: b}}
%s`, upstream.URL, routesYAML)
	h := newHandlerWith(t, cfg, func(o *proxy.Options) { o.MaxConcurrent = 2 })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	done := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(srv.URL + "/alpha/slow")
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	<-arrived
	<-arrived
	resp, err := http.Get(srv.URL + "/alpha/third")
	if err != nil {
		t.Fatal(err)
	}
	if e := readError(t, resp); resp.StatusCode != http.StatusServiceUnavailable || e.Code != "SlowDown" {
		t.Errorf("third request: %d %+v", resp.StatusCode, e)
	}
	close(release)
	for range 2 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("a request within the cap got %d", code)
		}
	}
}

// TestExpectDroppedForR2: R2 never sends 100 Continue, so signet does not forward Expect
// to R2 accounts (the body would wait a second each time); other upstreams get it.
func TestExpectDroppedForR2(t *testing.T) {
	expects := make(chan string, 2)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		expects <- r.Header.Get("Expect")
		io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(upstream.Close)
	h := newHandler(t, fmt.Sprintf(`
accounts:
  r2: {r2_account_id: 0123456789abcdef0123456789abcdef, endpoint: %[1]q, credentials: {access_key_id: a, secret_access_key: b}}
  s3: {endpoint: %[1]q, credentials: {access_key_id: a, secret_access_key: b}}
buckets:
  - {name: on-r2, account: r2}
  - {name: on-s3, account: s3}
`, upstream.URL))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, tc := range []struct{ bucket, want string }{{"on-r2", ""}, {"on-s3", "100-continue"}} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/"+tc.bucket+"/k", strings.NewReader("body"))
		req.Header.Set("Expect", "100-continue")
		tr := &http.Transport{ExpectContinueTimeout: time.Minute}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if got := <-expects; got != tc.want {
			t.Errorf("%s: upstream got Expect %q, want %q", tc.bucket, got, tc.want)
		}
	}
}

// TestHTTP1ToTLSUpstreams: the default transport speaks HTTP/1.1 to TLS upstreams, even to
// one offering HTTP/2: measured faster for large objects at concurrency 32 (issue 16).
func TestHTTP1ToTLSUpstreams(t *testing.T) {
	protos := make(chan string, 1)
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.Proto
	}))
	upstream.EnableHTTP2 = true
	upstream.StartTLS()
	t.Cleanup(upstream.Close)
	tr := proxy.NewTransport(config.Timeouts{})
	tr.TLSClientConfig = upstream.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	h := newHandlerWith(t, fmt.Sprintf(`
accounts:
  gw: {endpoint: %q, credentials: {access_key_id: a, secret_access_key: b}}
%s`, upstream.URL, routesYAML), func(o *proxy.Options) { o.Transport = tr })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/alpha/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p := <-protos; p != "HTTP/1.1" {
		t.Errorf("upstream saw %s, want HTTP/1.1", p)
	}
}
