package listen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// unixScheme prefixes a Unix socket path in a listen address.
const unixScheme = "unix://"

// socketMode lets the owner and the group connect (connecting needs write permission).
const socketMode = 0o660

// ListenOptions are Listen's optional settings.
type ListenOptions struct {
	// MaxConnsPerAddress bounds the connections open at once from one client IP address on a
	// TCP listener; beyond it a new connection is closed as soon as it is accepted. 0: no
	// bound.
	MaxConnsPerAddress int
}

// Listen opens addr, a TCP "host:port" or a Unix socket "unix:///path/to.sock", wrapped
// in TLS when tlsConfig is non-nil. A Unix socket is made mode 0660; a socket file left
// by a process that is gone is removed first, while a live socket or a path that is not
// a socket is an error. Closing the listener removes the socket file.
func Listen(ctx context.Context, addr string, tlsConfig *tls.Config, optFns ...func(*ListenOptions)) (net.Listener, error) {
	var o ListenOptions
	for _, fn := range optFns {
		fn(&o)
	}
	var (
		ln  net.Listener
		err error
	)
	if path, ok := strings.CutPrefix(addr, unixScheme); ok {
		ln, err = listenUnix(ctx, path)
	} else {
		var lc net.ListenConfig
		ln, err = lc.Listen(ctx, "tcp", addr)
		if err != nil {
			err = fmt.Errorf("listen on %s: %w", addr, err)
		} else if o.MaxConnsPerAddress > 0 {
			ln = &perAddressListener{Listener: ln, max: o.MaxConnsPerAddress, open: map[netip.Addr][]*countedConn{}}
		}
	}
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		ln = tlsListener{tls.NewListener(ln, tlsConfig), ln}
	}
	return ln, nil
}

// tlsListener is a TLS listener that can name the listener beneath (for ConnStateHook).
type tlsListener struct {
	net.Listener
	inner net.Listener
}

func (l tlsListener) Unwrap() net.Listener { return l.inner }

// listenUnix binds a Unix socket at path, replacing a stale one, and makes it 0660.
func listenUnix(ctx context.Context, path string) (net.Listener, error) {
	if path == "" {
		return nil, fmt.Errorf("listen on %s: no socket path", unixScheme)
	}
	if err := removeStaleSocket(ctx, path); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on unix socket %s: %w", path, err)
	}
	// Bind creates the socket with the umask's mode; there is no way to pass one without
	// changing the process-wide umask, so set it at once.
	if err := os.Chmod(path, socketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set mode of unix socket %s: %w", path, err)
	}
	return ln, nil
}

// removeStaleSocket removes path if it is a socket nobody listens on.
func removeStaleSocket(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unix socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("unix socket %s: the path exists and is not a socket (%s)", path, fi.Mode().Type())
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		conn.Close()
		return fmt.Errorf("unix socket %s: another process is listening on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("unix socket %s: check whether it is in use: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale unix socket %s: %w", path, err)
	}
	return nil
}

// perAddressListener bounds the connections open at once from each client IP address, so
// that one client cannot take every file descriptor (and with them every other client's
// service) by holding connections open. At the bound, a new connection takes the place of
// the address's oldest idle one (connected, no request under way): holding connections
// open gains nothing, and a client reusing its own pool is never locked out by it. Only
// when every one is busy is the new connection closed. Busy is what the server says, through
// ConnState.
type perAddressListener struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[netip.Addr][]*countedConn // in the order accepted
}

func (l *perAddressListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ta, ok := c.RemoteAddr().(*net.TCPAddr)
		if !ok {
			return c, nil // not an IP peer: nothing to count by
		}
		cc := &countedConn{Conn: c, l: l, addr: ta.AddrPort().Addr().Unmap()}
		l.mu.Lock()
		var evict *countedConn
		if open := l.open[cc.addr]; len(open) >= l.max {
			for _, o := range open {
				if !o.busy.Load() {
					evict = o
					break
				}
			}
		}
		full := len(l.open[cc.addr]) >= l.max && evict == nil
		if !full {
			l.open[cc.addr] = append(l.open[cc.addr], cc)
		}
		l.mu.Unlock()
		if evict != nil {
			_ = evict.Close()
		}
		if full {
			_ = c.Close()
			continue
		}
		return cc, nil
	}
}

// ConnState is an http.Server ConnState hook: it tells the listener which connections have
// a request under way.
func (l *perAddressListener) ConnState(c net.Conn, s http.ConnState) {
	for {
		if cc, ok := c.(*countedConn); ok {
			cc.busy.Store(s == http.StateActive)
			return
		}
		u, ok := c.(interface{ NetConn() net.Conn }) // *tls.Conn
		if !ok {
			return
		}
		c = u.NetConn()
	}
}

func (l *perAddressListener) release(cc *countedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	open := slices.DeleteFunc(l.open[cc.addr], func(o *countedConn) bool { return o == cc })
	if len(open) == 0 {
		delete(l.open, cc.addr)
	} else {
		l.open[cc.addr] = open
	}
}

// countedConn gives its place back once, when it is closed.
type countedConn struct {
	net.Conn
	l    *perAddressListener
	addr netip.Addr
	busy atomic.Bool
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.release(c) })
	return c.Conn.Close()
}

// ConnStateHook returns ln's http.Server ConnState hook, or nil when ln needs none.
func ConnStateHook(ln net.Listener) func(net.Conn, http.ConnState) {
	for {
		switch l := ln.(type) {
		case *perAddressListener:
			return l.ConnState
		case interface{ Unwrap() net.Listener }:
			ln = l.Unwrap()
		default:
			return nil
		}
	}
}
