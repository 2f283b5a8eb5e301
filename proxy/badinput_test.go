package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBadInputNeverReachesUpstream sends requests signet must refuse itself: each gets
// the right S3 XML error, and the upstream sees none of them.
func TestBadInputNeverReachesUpstream(t *testing.T) {
	var hits atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method == http.MethodGet && r.URL.Path == "/" { // ListBuckets: none
			fmt.Fprint(w, `<ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>`)
			return
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(upstream.Close)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	t.Cleanup(other.Close)
	h := newHandler(t, fmt.Sprintf(`
accounts:
  gw: {endpoint: %q, credentials: {access_key_id: a, secret_access_key: b}}
  other: {endpoint: %q, credentials: {access_key_id: c, secret_access_key: d}}
%s
  - {name: elsewhere, account: other}
`, upstream.URL, other.URL, routesYAML))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name    string
		method  string
		path    string
		host    string
		header  map[string]string
		body    string
		chunked bool
		status  int
		code    string
		msg     string // part of the message
	}{
		{name: "unrouted bucket", method: "GET", path: "/nothere/key", status: 404, code: "NoSuchBucket", msg: `bucket "nothere" is not configured`},
		{name: "unrouted bucket in virtual-hosted style", method: "GET", path: "/key", host: "nothere.localhost", status: 404, code: "NoSuchBucket", msg: "nothere"},
		{name: "invalid bucket name", method: "GET", path: "/Bad_Bucket/key", status: 400, code: "InvalidBucketName"},
		{name: "too short bucket name", method: "GET", path: "/ab/key", status: 400, code: "InvalidBucketName"},
		{name: "unknown host suffix", method: "GET", path: "/alpha/key", host: "alpha.evil.example", status: 400, code: "InvalidArgument", msg: "virtual_host_suffixes"},
		{name: "write to read-only bucket", method: "PUT", path: "/frozen/key", body: "x", status: 403, code: "AccessDenied", msg: "read-only"},
		{name: "delete in read-only bucket", method: "DELETE", path: "/frozen/key", status: 403, code: "AccessDenied"},
		{name: "dot-dot segment", method: "GET", path: "/alpha/a/../../other/key", status: 400, code: "InvalidURI"},
		{name: "encoded dot-dot segment", method: "GET", path: "/alpha/%2e%2e/beta/key", status: 400, code: "InvalidURI"},
		{name: "no bucket before key", method: "GET", path: "//key", status: 400, code: "InvalidURI"},
		{name: "key too long", method: "GET", path: "/alpha/" + strings.Repeat("k", 1025), status: 400, code: "KeyTooLongError"},
		{name: "key not utf-8", method: "GET", path: "/alpha/%ff%fe", status: 400, code: "InvalidURI"},
		{name: "bad query", method: "GET", path: "/alpha/key?a=%zz", status: 400, code: "InvalidArgument"},
		{name: "write to service root", method: "PUT", path: "/", status: 405, code: "MethodNotAllowed"},
		{name: "method S3 does not have", method: "PROPFIND", path: "/alpha/key", status: 405, code: "MethodNotAllowed", msg: "only GET, HEAD, PUT, POST, DELETE"},
		{name: "chunked body without length", method: "PUT", path: "/alpha/key", body: "data", chunked: true, status: 411, code: "MissingContentLength"},
		{name: "copy from an unrouted bucket", method: "PUT", path: "/alpha/key", header: map[string]string{"X-Amz-Copy-Source": "/nothere/src"}, status: 404, code: "NoSuchBucket", msg: "copy source"},
		{name: "copy across accounts", method: "PUT", path: "/alpha/key", header: map[string]string{"X-Amz-Copy-Source": "elsewhere/src"}, status: 400, code: "InvalidRequest", msg: "across accounts"},
		{name: "copy source without key", method: "PUT", path: "/alpha/key", header: map[string]string{"X-Amz-Copy-Source": "beta"}, status: 400, code: "InvalidArgument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // unknown length: sent chunked
				}
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = tt.path // exactly as written, no client-side cleaning
			if tt.host != "" {
				req.Host = fmt.Sprintf("%s:%d", tt.host, port)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			e := readError(t, resp)
			if resp.StatusCode != tt.status || e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("got %d %+v, want %d %s containing %q", resp.StatusCode, e, tt.status, tt.code, tt.msg)
			}
		})
	}

	t.Run("absolute-form request line", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET %s/alpha/key HTTP/1.1\r\nHost: localhost\r\n\r\n", other.URL)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if e := readError(t, resp); resp.StatusCode != 400 || e.Code != "InvalidURI" {
			t.Errorf("got %d %+v", resp.StatusCode, e)
		}
	})

	// A refused upload that asked for 100 Continue is answered at once, without the body:
	// curl, boto3 and the aws CLI would otherwise wait about a second before sending it.
	t.Run("refused upload with Expect: 100-continue", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT /frozen/key HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		// No body is sent: signet must answer without one, so this read returns the 403.
		// (Waiting for the body, signet would first send 100 Continue and then hang; the
		// deadline only turns that hang into a failure.)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if e := readError(t, resp); resp.StatusCode != 403 || e.Code != "AccessDenied" {
			t.Errorf("got %d %+v, want 403 AccessDenied before any body", resp.StatusCode, e)
		}
	})

	t.Run("list buckets is answered by signet", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "<Name>alpha</Name>") || strings.Contains(string(b), "real-bucket") {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	})

	// The upstream of the glob route was asked for its bucket list once (it has none, so
	// signet listed the configured names); nothing else reached either upstream.
	if n := hits.Load(); n != 1 {
		t.Errorf("upstreams were reached %d times, want only the one ListBuckets", n)
	}
}
