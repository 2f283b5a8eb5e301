package proxy

import (
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// TestResetConnStalledWrite: a write to an upstream that stopped reading fails once no
// byte has moved for the stall timeout, instead of blocking for ever (issue 12 item 8),
// while the same write to a reading upstream completes.
func TestResetConnStalledWrite(t *testing.T) {
	for _, tc := range []struct {
		name      string
		read      bool
		wantStall bool
	}{
		{name: "upstream stopped reading", read: false, wantStall: true},
		{name: "upstream reading", read: true, wantStall: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}()
			d, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			peer := <-accepted
			t.Cleanup(func() { peer.Close() })
			var drained sync.WaitGroup
			if tc.read {
				drained.Go(func() {
					buf := make([]byte, 1<<20)
					for {
						if _, err := peer.Read(buf); err != nil {
							return
						}
					}
				})
			}
			c := resetConn{TCPConn: d.(*net.TCPConn)}
			done := make(chan error, 1)
			go func() {
				_, err := c.write(make([]byte, 64<<20), 200*time.Millisecond)
				done <- err
			}()
			select {
			case err := <-done:
				if stalled := errors.Is(err, os.ErrDeadlineExceeded); stalled != tc.wantStall {
					t.Errorf("write: %v, want stalled %v", err, tc.wantStall)
				}
			case <-time.After(30 * time.Second): // a bound on failure only
				t.Fatal("the write to a stalled upstream is still blocked")
			}
			c.Close()
			drained.Wait()
		})
	}
}
