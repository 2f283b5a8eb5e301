package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signet-proxy/signet/internal/testenv"
)

// stallingUpstream accepts connections, reads the request head, and then does what stall
// says: it never reads the body, or answers with part of a body and then nothing.
func stallingUpstream(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	t.Cleanup(func() {
		close(done)
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() { // ends when the listener is closed
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() { // ends when the test closes c
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, answer)
				<-done
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestBodyIdleTimeout: a transfer that moves no byte for body_idle_timeout is ended,
// whichever side stalled, and nothing partial is stored; one that keeps moving, however
// slowly, completes.
func TestBodyIdleTimeout(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	if err := os.Mkdir(filepath.Join(gw.DataDir, "store"), 0o755); err != nil {
		t.Fatal(err)
	}
	deaf := stallingUpstream(t, "")
	stuck := stallingUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\nhalf of it")
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: "off"
body_idle_timeout: 1s
accounts:
  gw: {endpoint: %s, credentials: {access_key_id: %s, secret_access_key: %s}}
  deaf: {endpoint: %s, credentials: {access_key_id: a, secret_access_key: b}}
  stuck: {endpoint: %s, credentials: {access_key_id: a, secret_access_key: b}}
buckets:
  - {name: store, account: gw}
  - {name: deaf, account: deaf}
  - {name: stuck, account: stuck}
`, gw.Endpoint, gw.AccessKey, gw.SecretKey, deaf, stuck)))
	stored := func(key string) bool {
		_, err := os.Stat(filepath.Join(gw.DataDir, "store", key))
		return err == nil
	}
	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(15 * time.Second)) // the test's bound, far beyond the timeout
		return c, bufio.NewReader(c)
	}

	t.Run("a client that stops sending its body", func(t *testing.T) {
		c, br := dial(t)
		io.WriteString(c, "PUT /store/stalled HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n0123456789")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(string(body), "<Code>RequestTimeout</Code>") {
			t.Errorf("got %d %s, want 400 RequestTimeout", resp.StatusCode, body)
		}
		if stored("stalled") {
			t.Error("the cut-off upload was stored")
		}
	})

	t.Run("a slow client that keeps sending", func(t *testing.T) {
		c, br := dial(t)
		io.WriteString(c, "PUT /store/slow HTTP/1.1\r\nHost: localhost\r\nContent-Length: 8\r\n\r\n")
		for _, b := range []byte("12345678") {
			time.Sleep(400 * time.Millisecond) // the client's own pace: 3.2 s in all, never 1 s idle
			c.Write([]byte{b})
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !stored("slow") {
			t.Errorf("got %d, stored %v: want the slow upload stored", resp.StatusCode, stored("slow"))
		}
	})

	t.Run("an upstream that stops reading the body", func(t *testing.T) {
		c, br := dial(t)
		io.WriteString(c, fmt.Sprintf("PUT /deaf/big HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", 256<<20))
		go func() { // the client uploads until signet gives up; ends when c is closed
			buf := bytes.Repeat([]byte("x"), 1<<20)
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 504 {
			t.Errorf("got %d, want 504", resp.StatusCode)
		}
	})

	t.Run("an upstream that stops sending the answer", func(t *testing.T) {
		c, br := dial(t)
		io.WriteString(c, "GET /stuck/k HTTP/1.1\r\nHost: localhost\r\n\r\n")
		// Cut off, never ended as if complete: either before the head (still buffered) or
		// after part of the body; within the idle timeout, not the test's own deadline.
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			var got []byte
			got, err = io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("the answer ended cleanly with %q", got)
			}
		}
		if isDeadline(err) {
			t.Errorf("still waiting when the test gave up: %v", err)
		}
	})

	t.Run("a client that stops reading the answer", func(t *testing.T) {
		c, _ := dial(t)
		io.WriteString(c, "PUT /store/large HTTP/1.1\r\nHost: localhost\r\nContent-Length: 67108864\r\n\r\n")
		if _, err := io.Copy(c, io.LimitReader(zeros{}, 64<<20)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("upload: %v %v", resp, err)
		}
		resp.Body.Close()
		c2, _ := dial(t)
		io.WriteString(c2, "GET /store/large HTTP/1.1\r\nHost: localhost\r\n\r\n")
		// c2 reads nothing: signet ends the request once its writes make no progress.
		p.waitLog(t, regexp.MustCompile(`method=GET bucket=store .*status=200`), 10*time.Second)
	})
}

func isDeadline(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
