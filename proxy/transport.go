package proxy

import (
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
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
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
