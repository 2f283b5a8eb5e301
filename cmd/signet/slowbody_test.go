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
