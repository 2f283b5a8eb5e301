package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstreamLog records what reached a test upstream.
type upstreamLog struct {
	mu   sync.Mutex
	seen []string
}

func (u *upstreamLog) handler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.seen = append(u.seen, fmt.Sprintf("%s %s len=%d body=%d", r.Method, r.URL.RequestURI(), r.ContentLength, len(body)))
	u.mu.Unlock()
	// Echo a response-header override the way S3 does, so header injection would show.
	if ct := r.URL.Query().Get("response-content-type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	fmt.Fprint(w, "upstream ok")
}

func (u *upstreamLog) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// rawRequest sends raw on a new connection and reads one response (nil if the server
// closed the connection instead).
func rawRequest(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// TestAttacks sends hostile requests to the real binary. Each is rejected or harmless:
// the upstream sees only well-formed requests for the routed bucket, the other host sees
// nothing, and normal requests keep working throughout.
func TestAttacks(t *testing.T) {
	var up, other upstreamLog
	upstream := httptest.NewServer(http.HandlerFunc(up.handler))
	t.Cleanup(upstream.Close)
	elsewhere := httptest.NewServer(http.HandlerFunc(other.handler))
	t.Cleanup(elsewhere.Close)
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: "off"
accounts:
  up: {endpoint: %s, credentials: {access_key_id: a, secret_access_key: b}}
buckets:
  - {name: alpha, account: up}
`, upstream.URL)))
	elsewhereHost := strings.TrimPrefix(elsewhere.URL, "http://")
	normal := func(t *testing.T) {
		t.Helper()
		resp, err := http.Get("http://" + p.addr + "/alpha/normal")
		if err != nil {
			t.Fatalf("a normal request failed: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("a normal request got %d", resp.StatusCode)
		}
	}

	tests := []struct {
		name string
		raw  string
		// status is the answer wanted; 0 means the connection may simply be closed.
		status int
		check  func(t *testing.T, resp *http.Response)
	}{
		{name: "content-length and transfer-encoding", status: 411,
			raw: "PUT /alpha/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /elsewhere HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		{name: "two different content-lengths", status: 400,
			raw: "PUT /alpha/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc"},
		{name: "unknown transfer-encoding", status: 501,
			raw: "PUT /alpha/k HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		// Go unfolds obs-fold into one line ("b c"): forwarded as one header, nothing injected.
		{name: "obs-fold header", status: 200,
			raw: "GET /alpha/k HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n c\r\nX-Injected: no\r\n\r\n"},
		{name: "bare CR in a header", status: 400,
			raw: "GET /alpha/k HTTP/1.1\r\nHost: localhost\r\nX-A: b\rX-B: c\r\n\r\n"},
		{name: "two hosts", status: 400,
			raw: "GET /alpha/k HTTP/1.1\r\nHost: localhost\r\nHost: " + elsewhereHost + "\r\n\r\n"},
		{name: "dot-dot traversal", status: 400,
			raw: "GET /alpha/../other/k HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		{name: "encoded dot-dot traversal", status: 400,
			raw: "GET /alpha/%2e%2e/%2e%2e/k HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		{name: "encoded slash into the bucket name", status: 400,
			raw: "GET /alpha%2f..%2fother/k HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		{name: "host pointing elsewhere", status: 400,
			raw: "GET /alpha/k HTTP/1.1\r\nHost: " + strings.Replace(elsewhereHost, "127.0.0.1", "alpha.evil.example", 1) + "\r\n\r\n"},
		{name: "absolute-form request line", status: 400,
			raw: "GET " + elsewhere.URL + "/alpha/k HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		{name: "CONNECT", status: 405, // refused as no S3 method, before anything else
			raw: "CONNECT " + elsewhereHost + " HTTP/1.1\r\nHost: " + elsewhereHost + "\r\n\r\n"},
		{name: "oversized headers", status: 431,
			raw: "GET /alpha/k HTTP/1.1\r\nHost: localhost\r\nX-Big: " + strings.Repeat("a", 128<<10) + "\r\n\r\n"},
		// Refused: a value that is no media type could be anything to a browser.
		{name: "CRLF injected through a response override", status: 400,
			raw: "GET /alpha/k?response-content-type=text/plain%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: localhost\r\n\r\n",
			check: func(t *testing.T, resp *http.Response) {
				if resp.Header.Get("X-Injected") != "" {
					t.Errorf("a header was injected: %v", resp.Header)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawRequest(t, p.addr, tt.raw)
			switch {
			case resp == nil && tt.status != 0:
				t.Errorf("connection closed, want %d", tt.status)
			case resp != nil && resp.StatusCode != tt.status:
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("got %d %s, want %d", resp.StatusCode, b, tt.status)
			case resp != nil && tt.check != nil:
				tt.check(t, resp)
			}
			normal(t)
		})
	}

	t.Run("slow header trickle is cut off", func(t *testing.T) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /alpha/k HTTP/1.1\r\nHost: localhost\r\n")
		closed := make(chan struct{})
		go func() { // the attacker: one header byte a second, bounded
			defer close(closed)
			for range 30 {
				if _, err := c.Write([]byte("X")); err != nil {
					return
				}
				normal(t)               // and others are served meanwhile
				time.Sleep(time.Second) // the attack's own pace, not synchronisation
			}
		}()
		select {
		case <-closed:
		case <-time.After(25 * time.Second):
			t.Fatal("a header trickle kept its connection past ReadHeaderTimeout (10s)")
		}
	})

	t.Run("10000 idle connections", func(t *testing.T) {
		conns := make([]net.Conn, 0, 10000)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 10000 {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatalf("after %d connections: %v", len(conns), err)
			}
			conns = append(conns, c)
		}
		normal(t)
	})

	if got := other.requests(); len(got) > 0 {
		t.Errorf("the other host was reached: %v", got)
	}
	for _, r := range up.requests() {
		if !strings.HasPrefix(r, "GET /alpha/") || !strings.HasSuffix(r, " len=0 body=0") {
			t.Errorf("the upstream saw %q", r)
		}
	}
}
