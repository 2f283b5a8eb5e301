package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// NewTransport returns the upstream transport signet uses by default: its own, never
// http.DefaultTransport, with timeouts on every phase that has a natural bound and none on
// the body, so that long streams are never cut (caddy HTTPTransport.NewTransport).
func NewTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	// Request-body copy buffers, shared by the transport's connections: a body copy holds
	// one only while it runs.
	buffers := &sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
	return &http.Transport{
		// HTTPS_PROXY and NO_PROXY are honoured, for corporate egress proxies.
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				return resetConn{tc, buffers}, nil
			}
			return c, err
		},
		// HTTP/1.1 to TLS upstreams too, by measurement (issue 16, README "Performance"):
		// against a TLS upstream at concurrency 32, Go's HTTP/2 client moved large objects
		// markedly slower and with more CPU than one connection per transfer over HTTP/1.1,
		// and small requests cost more CPU too. With DialContext set and this false, the
		// transport never offers h2.
		ForceAttemptHTTP2:     false,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Counted from the end of the request body: a CompleteMultipartUpload of a large
		// object may take a while to answer.
		ResponseHeaderTimeout: 5 * time.Minute,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          1024,
		// Go's default of 2 idle connections per host makes every burst redial.
		MaxIdleConnsPerHost: 128,
		// Bodies pass through as stored: signet must not decompress or ask for gzip.
		DisableCompression: true,
		WriteBufferSize:    64 << 10,
		ReadBufferSize:     64 << 10,
	}
}

// resetConn closes with a TCP reset instead of a FIN.
//
// The transport closes a connection in the middle of a request only when the request
// failed: the client's body broke off, or the client went away. A FIN then tells the
// upstream that the body ended, and a lenient HTTP/1.1 server stores the truncated body as
// the object (versitygw, through fasthttp's streamed request bodies, does so when the
// Content-Length was not reached). A reset makes its read fail, so nothing is stored. At
// every other close the connection is idle, and a reset costs nothing.
type resetConn struct {
	*net.TCPConn
	buffers *sync.Pool
}

func (c resetConn) Close() error {
	_ = c.SetLinger(0)
	return c.TCPConn.Close()
}

// ReadFrom copies request bodies to the connection in large pieces. The transport writes
// every body through the connection's ReadFrom; *net.TCPConn's own falls back to a 32 KiB
// copy (the body is not a file or socket it can splice), and measured 1 GiB PUTs run about
// 1.3× faster with a third less CPU through 256 KiB writes.
func (c resetConn) ReadFrom(r io.Reader) (int64, error) {
	bp := c.buffers.Get().(*[]byte)
	defer c.buffers.Put(bp)
	return io.CopyBuffer(writerOnly{c.TCPConn}, r, *bp)
}

// writerOnly hides the connection's ReadFrom from io.CopyBuffer, which would otherwise
// call it and never use the buffer.
type writerOnly struct{ io.Writer }

// uploadGuard makes sure a failed upload is reset upstream, never ended.
//
// The transport closes the connection of a request whose body read fails, and resetConn
// turns that close into a TCP reset. Over TLS, though, the transport closes the tls.Conn,
// which first sends a close_notify alert: a clean end of stream, which a lenient HTTP/1.1
// server takes for the end of the body and stores what it got (versitygw does, through
// fasthttp). So when the body fails, the guard resets the TCP connection underneath before
// the transport sees the error; the alert then has nowhere to go. HTTP/2 connections are
// left alone: there the transport resets only the stream, which no server takes for an end.
type uploadGuard struct {
	mu   sync.Mutex
	conn net.Conn // the connection the body is being written to
	sent bool     // the whole body was read: nothing left to protect
}

// gotConn is an httptrace.ClientTrace GotConn hook.
func (g *uploadGuard) gotConn(info httptrace.GotConnInfo) {
	g.mu.Lock()
	g.conn = info.Conn
	g.mu.Unlock()
}

// bodyDone records how the body read ended: at its end, or failing.
func (g *uploadGuard) bodyDone(err error) {
	if err == io.EOF {
		g.mu.Lock()
		g.sent = true
		g.mu.Unlock()
		return
	}
	g.abort()
}

// abort resets the upload's connection unless its whole body was sent.
func (g *uploadGuard) abort() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sent || g.conn == nil {
		return
	}
	c := g.conn
	if tc, ok := c.(*tls.Conn); ok {
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			return
		}
		c = tc.NetConn()
	}
	if rc, ok := c.(resetConn); ok {
		_ = rc.Close() // a reset; the transport's own close then fails harmlessly
	}
}

// guardedBody tells its guard how the body read ended.
type guardedBody struct {
	io.ReadCloser
	g *uploadGuard
}

func (b guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.g.bodyDone(err)
	}
	return n, err
}
