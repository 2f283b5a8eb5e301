package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// client sends the harness's requests: signed when it talks to the upstream directly,
// plain and unsigned when a proxy is in between.
type client struct {
	tr     *http.Transport
	hc     *http.Client
	signer *v4.Signer // nil: requests go unsigned
	creds  aws.Credentials
	region string
}

func newClient(u *upstream, sign bool) *client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		ResponseHeaderTimeout: 5 * time.Minute,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256, // every worker keeps its connection
		DisableCompression:    true,
		WriteBufferSize:       256 << 10,
		ReadBufferSize:        256 << 10,
		TLSClientConfig:       u.tls, // HTTP/1.1: a client of the upstream as the proxies are
	}
	c := &client{
		tr: tr,
		hc: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		region: u.region,
	}
	if sign {
		c.signer = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		c.creds = aws.Credentials{AccessKeyID: u.accessKey, SecretAccessKey: u.secretKey, Source: "static"}
	}
	return c
}

func (c *client) close() { c.tr.CloseIdleConnections() }

// newRequest builds a request, signed with UNSIGNED-PAYLOAD for the direct target.
func (c *client) newRequest(ctx context.Context, method, url string, body io.Reader, size int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.ContentLength = size
	}
	if c.signer != nil {
		req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
		if err := c.signer.SignHTTP(ctx, c.creds, req, unsignedPayload, "s3", c.region, time.Now()); err != nil {
			return nil, fmt.Errorf("sign request: %w", err)
		}
	}
	return req, nil
}

// do sends req and fails on anything but 200, with the start of the error body.
func (c *client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}

// put uploads body (size bytes) to url.
func (c *client) put(ctx context.Context, url string, body io.Reader, size int64) error {
	req, err := c.newRequest(ctx, http.MethodPut, url, body, size)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("PUT %s: reading response: %w", req.URL.Path, err)
	}
	return nil
}

// putChunked uploads body (size bytes) to url framed as aws-chunked in mode.
func (c *client) putChunked(ctx context.Context, url string, u *upstream, mode string, body io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, http.NoBody)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if err := c.newChunkedRequest(req, u, mode, body, size); err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("PUT %s: reading response: %w", req.URL.Path, err)
	}
	return nil
}

// get downloads url and checks the body against want, byte for byte. It returns the time
// from sending the request to the first body byte.
func (c *client) get(ctx context.Context, url string, want *content, buf []byte) (ttfb time.Duration, err error) {
	start := time.Now()
	req, err := c.newRequest(ctx, http.MethodGet, url, nil, 0)
	if err != nil {
		return 0, err
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	chk := &checker{c: want}
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if ttfb == 0 {
				ttfb = time.Since(start)
			}
			if _, err := chk.Write(buf[:n]); err != nil {
				return 0, fmt.Errorf("GET %s: %w", req.URL.Path, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, fmt.Errorf("GET %s: reading body: %w", req.URL.Path, rerr)
		}
	}
	if err := chk.finish(); err != nil {
		return 0, fmt.Errorf("GET %s: %w", req.URL.Path, err)
	}
	return ttfb, nil
}

// loadResult is one timed load loop.
type loadResult struct {
	latencies []time.Duration // sorted
	elapsed   time.Duration
}

// loadLoop runs conc workers that each send one request after another until d has passed
// or maxRequests have started, and records each request's latency. The first failure stops
// every worker and is returned.
func loadLoop(ctx context.Context, conc int, d time.Duration, maxRequests int64, one func(ctx context.Context, worker int, buf []byte) error) (loadResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var budget atomic.Int64
	budget.Store(maxRequests)
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range conc {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			lats[w] = make([]time.Duration, 0, 4096)
			for ctx.Err() == nil && time.Now().Before(deadline) && budget.Add(-1) >= 0 {
				t0 := time.Now()
				if err := one(ctx, w, buf); err != nil {
					cancel(err)
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return loadResult{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	if len(all) == 0 {
		return loadResult{}, errors.New("no request completed")
	}
	return loadResult{latencies: all, elapsed: elapsed}, nil
}

// percentile returns the p-th percentile (0..100) of sorted, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
