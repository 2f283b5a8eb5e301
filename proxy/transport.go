package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/signet-proxy/signet/config"
)

// transport is what carries requests to up: Options.Transport when one is set (tests
// inject faults that way), else the account's own.
func (h *Handler) transport(up *Upstream) http.RoundTripper {
	if h.opts.Transport != nil {
		return h.opts.Transport
	}
	return up.Transport
}

// roundTrip sends req to up and, when the upstream answers with an error, records its S3
// error code for the request log: only the code, because the rest of the body may echo
// the signature or the string signed. The start of the body is read and put back.
func (h *Handler) roundTrip(up *Upstream, req *http.Request, x *exchange) (*http.Response, error) {
	resp, err := h.transport(up).RoundTrip(req)
	if err != nil || resp.StatusCode < 400 || x == nil || req.Method == http.MethodHead {
		return resp, err
	}
	buf := make([]byte, maxErrorPeek)
	n, rerr := io.ReadFull(resp.Body, buf)
	buf = buf[:n]
	rest := resp.Body
	if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
		rest = http.NoBody // a failed read is read again, and fails again, when relayed
	}
	resp.Body = peekedBody{io.MultiReader(bytes.NewReader(buf), rest), resp.Body}
	if m := errorCodeRE.FindSubmatch(buf); m != nil {
		x.upstreamCode = string(m[1])
	}
	return resp, nil
}

// upstreamHint is what the request log adds to an upstream error code that says the
// upstream refused signet's own signature or credentials (not the client's request): the
// client only sees an error about its dummy keys.
func upstreamHint(code string) string {
	switch code {
	case "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken", "InvalidTokenId", "ExpiredToken", "Unauthorized":
		return "the upstream refused the credentials signet signs this account's requests with (a wrong, revoked or expired key, a wrong region, or a key without access to this bucket); run `signet check` (with the same --config, or R2_* variables) to test each route"
	}
	return ""
}

// NewTransport returns an account's upstream transport: its own, never
// http.DefaultTransport, with the account's timeouts on every phase that has a natural
// bound and none on the body, so that long streams are never cut (caddy
// HTTPTransport.NewTransport). The timeouts come from the config, which holds their
// defaults.
func NewTransport(timeouts config.Timeouts) *http.Transport {
	d := &net.Dialer{Timeout: time.Duration(timeouts.Dial), KeepAlive: 30 * time.Second}
	// Request-body copy buffers, shared by the transport's connections: a body copy holds
	// one only while it runs.
	buffers := &sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
	return &http.Transport{
		// HTTPS_PROXY and NO_PROXY are honoured, for corporate egress proxies.
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				return &resetConn{TCPConn: tc, buffers: buffers, closed: make(chan struct{})}, nil
			}
			return c, err
		},
		// HTTP/1.1 to TLS upstreams too, by measurement (issue 16, README "Performance"):
		// against a TLS upstream at concurrency 32, Go's HTTP/2 client moved large objects
		// markedly slower and with more CPU than one connection per transfer over HTTP/1.1,
		// and small requests cost more CPU too. With DialContext set and this false, the
		// transport never offers h2.
		ForceAttemptHTTP2:     false,
		TLSHandshakeTimeout:   time.Duration(timeouts.TLSHandshake),
		ExpectContinueTimeout: time.Second,
		// Counted from the end of the request body.
		ResponseHeaderTimeout: time.Duration(timeouts.ResponseHeader),
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
//
// # An answer before the body
//
// An upstream that refuses an upload from its headers answers at once and closes without
// reading the body, so writing the rest of the body fails with a reset. The transport
// returns whichever it sees first, the response or the write error (net/http
// persistConn.roundTrip selects on both), and the client got 502 "connection reset by peer"
// for about one refused upload in five, while the upstream's own answer (404 NoSuchUpload,
// 400 InvalidRequest) went unread; SDKs retry a 502 and the real error stays hidden. So a
// failed write returns only once the connection is closed, or after refusedUploadWait: the
// transport's read side then either delivers the answer first, or fails and closes the
// connection when no answer came.
type resetConn struct {
	*net.TCPConn
	buffers   *sync.Pool
	closeOnce sync.Once
	closed    chan struct{}
}

// refusedUploadWait bounds how long a failed write waits for the connection to close: an
// answer sent before the reset is already on its way by then.
const refusedUploadWait = 5 * time.Second

func (c *resetConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	_ = c.SetLinger(0)
	return c.TCPConn.Close()
}

// Write writes p; when that fails, it waits as the type's doc says before returning the error.
func (c *resetConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	if err != nil {
		t := time.NewTimer(refusedUploadWait)
		defer t.Stop()
		select {
		case <-c.closed:
		case <-t.C:
		}
	}
	return n, err
}

// ReadFrom copies request bodies to the connection in large pieces. The transport writes
// every body through the connection's ReadFrom; *net.TCPConn's own falls back to a 32 KiB
// copy (the body is not a file or socket it can splice), and measured 1 GiB PUTs run about
// 1.3× faster with a third less CPU through 256 KiB writes.
func (c *resetConn) ReadFrom(r io.Reader) (int64, error) {
	bp := c.buffers.Get().(*[]byte)
	defer c.buffers.Put(bp)
	return io.CopyBuffer(writerOnly{c}, r, *bp)
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
//
// A process that dies (SIGKILL after a grace period, the OOM killer, a crash) closes no
// connection itself: the kernel does, with a FIN, and the upstream stores the truncated
// body (issue 12 item 7). So while a body is in flight its connection has SO_LINGER 0,
// which makes the kernel's own close a reset too; once the whole body is sent the normal
// close is restored, and a connection kept for reuse closes like any other.
type uploadGuard struct {
	mu   sync.Mutex
	conn net.Conn // the connection the body is being written to
	sent bool     // the whole body was read: nothing left to protect
}

// gotConn is an httptrace.ClientTrace GotConn hook: the body is about to be written to
// info.Conn.
func (g *uploadGuard) gotConn(info httptrace.GotConnInfo) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conn = info.Conn
	if rc, ok := g.tcp(); ok && !g.sent {
		_ = rc.SetLinger(0)
	}
}

// bodyDone records how the body read ended: at its end, or failing.
func (g *uploadGuard) bodyDone(err error) {
	if err == io.EOF {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.sent {
			g.sent = true
			if rc, ok := g.tcp(); ok {
				_ = rc.SetLinger(-1) // the body is complete: a FIN can no longer truncate it
			}
		}
		return
	}
	g.abort()
}

// abort resets the upload's connection unless its whole body was sent. Resetting also
// fails a body write blocked on an upstream that stopped reading.
func (g *uploadGuard) abort() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sent {
		return
	}
	if rc, ok := g.tcp(); ok {
		_ = rc.Close() // a reset; the transport's own close then fails harmlessly
	}
}

// tcp is the TCP connection under the upload's HTTP/1.1 connection; false for none or
// for HTTP/2. Needs mu.
func (g *uploadGuard) tcp() (*resetConn, bool) {
	c := g.conn
	if c == nil {
		return nil, false
	}
	if tc, ok := c.(*tls.Conn); ok {
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			return nil, false
		}
		c = tc.NetConn()
	}
	rc, ok := c.(*resetConn)
	return rc, ok
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
