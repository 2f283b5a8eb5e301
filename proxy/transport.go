package proxy

import (
	"context"
	"net"
	"net/http"
	"time"
)

// NewTransport returns the upstream transport signet uses by default: its own, never
// http.DefaultTransport, with timeouts on every phase that has a natural bound and none on
// the body, so that long streams are never cut (caddy HTTPTransport.NewTransport).
func NewTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		// HTTPS_PROXY and NO_PROXY are honoured, for corporate egress proxies.
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				return resetConn{tc}, nil
			}
			return c, err
		},
		ForceAttemptHTTP2:     true,
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
type resetConn struct{ *net.TCPConn }

func (c resetConn) Close() error {
	_ = c.SetLinger(0)
	return c.TCPConn.Close()
}
