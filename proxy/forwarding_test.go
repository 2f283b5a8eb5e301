package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
// must not leave a truncated object upstream, nor replace an existing one.
func TestAbortedUploadLeavesNothing(t *testing.T) {
	e := newEnv(t, "")
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
	if _, err := os.Stat(filepath.Join(e.gw.DataDir, "alpha", "fresh")); err == nil {
		fi, _ := os.Stat(filepath.Join(e.gw.DataDir, "alpha", "fresh"))
		t.Errorf("a truncated upload was stored: %d bytes", fi.Size())
	}
	if b := get(t, e.direct(), "alpha", "existing"); string(b) != "the old version" {
		t.Errorf("existing object became %d bytes", len(b))
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

// TestHTTP2ToTLSUpstreams: the default transport speaks HTTP/2 to TLS upstreams.
func TestHTTP2ToTLSUpstreams(t *testing.T) {
	protos := make(chan string, 1)
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.Proto
	}))
	upstream.EnableHTTP2 = true
	upstream.StartTLS()
	t.Cleanup(upstream.Close)
	tr := proxy.NewTransport()
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
	if p := <-protos; p != "HTTP/2.0" {
		t.Errorf("upstream saw %s", p)
	}
}
