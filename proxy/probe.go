package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ProbeResult is what [Handler.Probe] found out about one route.
type ProbeResult struct {
	Route *Route
	// Bucket is the name probed upstream.
	Bucket string
	// Expires is when the credentials used expire; zero when they do not.
	Expires time.Time
	// Source is the credentials' source, as the provider names it.
	Source string
	// ClockOffset is the upstream's clock (its Date header) minus ours; SigV4 fails beyond
	// 15 minutes. Zero when the upstream sent no Date.
	ClockOffset time.Duration
	// Status is the upstream's HTTP status; 0 when none came back.
	Status int
	// Err says why the probe failed; nil when the upstream accepted the signed request.
	Err error
}

// Probe sends a cheap signed request (ListObjectsV2 with max-keys=1) for the route of
// bucket, with the credentials a client request would get, and reports what happened.
func (h *Handler) Probe(ctx context.Context, bucket string) ProbeResult {
	t := h.table.Load()
	res := ProbeResult{Route: t.Lookup(bucket)}
	if res.Route == nil {
		res.Err = fmt.Errorf("bucket %q is not configured", bucket)
		return res
	}
	up := res.Route.Upstream
	res.Bucket = res.Route.UpstreamBucket(bucket)
	c, err := up.Creds.Retrieve(ctx, res.Route.credKey(bucket))
	if err != nil {
		res.Err = fmt.Errorf("credentials: %w", err)
		return res
	}
	res.Source = c.Source
	if c.CanExpire {
		res.Expires = c.Expires
	}
	u := *up.URL
	u.Path = "/" + res.Bucket
	u.RawQuery = "list-type=2&max-keys=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		res.Err = err
		return res
	}
	sent := time.Now()
	if err := h.signer.Sign(ctx, req, c, up.Region, "UNSIGNED-PAYLOAD", h.opts.Now()); err != nil {
		res.Err = fmt.Errorf("sign: %w", err)
		return res
	}
	resp, err := h.opts.Transport.RoundTrip(req)
	if err != nil {
		res.Err = err
		return res
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		// The Date has whole seconds: compare with the middle of the round trip.
		mid := sent.Add(time.Since(sent) / 2)
		res.ClockOffset = d.Sub(mid).Round(time.Second)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorPeek))
		code, msg := "", ""
		if m := errorCodeRE.FindSubmatch(body); m != nil {
			code = string(m[1])
		}
		if m := errorMessageRE.FindSubmatch(body); m != nil {
			msg = ": " + string(m[1])
		}
		res.Err = fmt.Errorf("%s %s%s", resp.Status, code, msg)
	}
	return res
}

// Routes lists the routes in config order.
func (t *Table) Routes() []*Route { return t.routes }
