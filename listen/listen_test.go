package listen

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestListenUnix(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string) // what is at path before Listen
		wantErr string                          // "" for success
	}{
		{name: "fresh path", prepare: func(*testing.T, string) {}},
		{name: "stale socket removed", prepare: func(t *testing.T, path string) {
			// A socket file whose process is gone: bound, then closed without unlinking.
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
			if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
				t.Fatalf("no stale socket at %s: %v", path, err)
			}
		}},
		{name: "live socket refused", wantErr: "another process is listening", prepare: func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}},
		{name: "regular file refused", wantErr: "not a socket", prepare: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "signet.sock")
			tc.prepare(t, path)
			ln, err := Listen(t.Context(), "unix://"+path, nil)
			if tc.wantErr != "" {
				if err == nil {
					ln.Close()
					t.Fatalf("Listen: no error; want %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Listen: %v; want %q", err, tc.wantErr)
				}
				if _, err := os.Lstat(path); err != nil {
					t.Errorf("the existing %s was removed: %v", path, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
				t.Errorf("%s: mode %v; want a socket, 0660", path, fi.Mode())
			}
			echoOnce(t, ln, "unix", path)
			if err := ln.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after Close, %s: %v; want it removed", path, err)
			}
		})
	}
}

func TestListenTCPAndTLS(t *testing.T) {
	ln, err := Listen(t.Context(), "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	echoOnce(t, ln, "tcp", ln.Addr().String())

	// With a tls.Config, the listener speaks TLS.
	p := newTestPair(t, 7)
	cert, err := tls.X509KeyPair(p.certPEM, p.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := Listen(t.Context(), "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tlsLn.Close() })
	leaf, err := getOK(t, serveOn(t, tlsLn), "localhost", p.pool)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber.Cmp(p.serial) != 0 {
		t.Errorf("served serial %v; want %v", leaf.SerialNumber, p.serial)
	}

	for _, addr := range []string{"unix://", "127.0.0.1:notaport"} {
		if ln, err := Listen(t.Context(), addr, nil); err == nil {
			ln.Close()
			t.Errorf("Listen(%q): no error", addr)
		}
	}
}

// echoOnce connects to ln and checks that a line sent comes back.
func echoOnce(t *testing.T, ln net.Listener, network, addr string) {
	t.Helper()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err
			return
		}
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			_, err = c.Write([]byte(line))
		}
		accepted <- err
	}()
	var d net.Dialer
	c, err := d.DialContext(t.Context(), network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "hello\n" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
}

// TestMaxConnsPerAddress: at the bound, a client address's new connection takes the place
// of its oldest idle one; when all are busy, it is closed as it arrives.
func TestMaxConnsPerAddress(t *testing.T) {
	ln, err := Listen(t.Context(), "127.0.0.1:0", nil, func(o *ListenOptions) { o.MaxConnsPerAddress = 2 })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	state := ConnStateHook(ln)
	if state == nil {
		t.Fatal("no ConnState hook")
	}
	accepted := make(chan net.Conn, 10)
	go func() { // ends when ln is closed
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	closed := func(c net.Conn) bool {
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	c1, c2 := dial(), dial()
	s1, s2 := <-accepted, <-accepted
	state(s1, http.StateActive)
	state(s2, http.StateActive)
	if over := dial(); !closed(over) {
		t.Error("a third connection while both are busy was not closed")
	}
	state(s1, http.StateIdle)
	dial()
	<-accepted
	if !closed(c1) {
		t.Error("the idle connection was not the one to go")
	}
	state(s2, http.StateIdle)
	_ = c2
	if n := len(accepted); n != 0 {
		t.Errorf("%d more connections accepted", n)
	}
}
