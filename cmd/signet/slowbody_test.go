package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRefusedBodiesAreNotWaitedFor: a request signet refuses before reading its body is
// answered at once with Connection: close, however slowly its body comes, instead of Go's
// server first reading up to 256 KiB of it; and a request that came with Transfer-Encoding
// (and so perhaps with a Content-Length too) closes its connection after the answer.
func TestRefusedBodiesAreNotWaitedFor(t *testing.T) {
	var up upstreamLog
	upstream := httptest.NewServer(http.HandlerFunc(up.handler))
	t.Cleanup(upstream.Close)
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: "off"
accounts:
  up: {endpoint: %s, credentials: {access_key_id: a, secret_access_key: b}}
buckets:
  - {name: alpha, account: up}
  - {name: frozen, account: up, access: read-only}
`, upstream.URL)))
	tests := []struct {
		name, head string
		status     int
	}{
		{"refused upload, body trickling", "PUT /frozen/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 200000\r\n\r\n0123456789", 403},
		{"refused unrouted upload", "PUT /nothere/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 200000\r\n\r\n0123", 404},
		{"refused chunked upload", "PUT /frozen/k HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123", 411},
		{"content-length with transfer-encoding", "PUT /alpha/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 411},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The bound on waiting: far below what draining a trickled body would take.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tt.head); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body is pending: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tt.status || !resp.Close {
				t.Errorf("got %d close=%v, want %d with Connection: close", resp.StatusCode, resp.Close, tt.status)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("the connection stayed open: %v", err)
			}
		})
	}
	if got := up.requests(); len(got) > 0 {
		t.Errorf("the upstream was reached: %v", got)
	}
}

// TestConnectionsPerAddressAreBounded: a client holding busy connections (uploads whose
// bodies never come) from one address gets no more than max_connections_per_address of
// them, and a client from another address is served meanwhile.
func TestConnectionsPerAddressAreBounded(t *testing.T) {
	arrived := make(chan struct{}, 100)
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			arrived <- struct{}{}
			select { // hold the upload until the test ends
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(upstream.Close)
	t.Cleanup(func() { close(release) })
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: "off"
max_connections_per_address: 8
accounts:
  up: {endpoint: %s, credentials: {access_key_id: a, secret_access_key: b}}
buckets:
  - {name: alpha, account: up}
`, upstream.URL)))
	attacker := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	var kept, cut int
	for range 20 {
		c, err := attacker.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Part of the body, enough to pass signet's write buffer so the upstream sees it.
		io.WriteString(c, "PUT /alpha/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n\r\n")
		c.Write(make([]byte, 128<<10))
		closed := make(chan struct{})
		go func() { // ends when c is closed, by signet (EOF, or a reset: data was unread) or the test
			c.Read(make([]byte, 1))
			close(closed)
		}()
		select {
		case <-arrived: // signet took it and is uploading: busy
			kept++
		case <-closed:
			cut++
		case <-time.After(10 * time.Second):
			t.Fatal("neither forwarded nor closed")
		}
	}
	if kept != 8 || cut != 12 {
		t.Errorf("one address kept %d connections and had %d cut, want 8 and 12", kept, cut)
	}
	resp, err := http.Get("http://" + p.addr + "/alpha/k")
	if err != nil {
		t.Fatalf("another address was not served: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("another address got %d", resp.StatusCode)
	}
}
