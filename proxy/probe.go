package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
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
	resp, err := h.transport(up).RoundTrip(req)
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
		res.Err = upstreamError(resp.Status, body)
	}
	return res
}

// upstreamError describes an upstream's S3 error answer by its status, code and message
// only: the rest of the body may echo a signature or the string signed.
func upstreamError(status string, body []byte) error {
	s := status
	if m := errorCodeRE.FindSubmatch(body); m != nil {
		s += " " + string(m[1])
	}
	if m := errorMessageRE.FindSubmatch(body); m != nil {
		s += ": " + string(m[1])
	}
	return errors.New(s)
}

// ProbeGlob checks a glob route by asking its upstream for the account's buckets
// (ListBuckets, signed as signet's own ListBuckets is). It reports how many of them the
// glob matches, or why the upstream refused; credentials minted per bucket cannot list,
// so for them it reports ErrNoProbe.
func (h *Handler) ProbeGlob(ctx context.Context, r *Route) (matched int, err error) {
	if r.Upstream.BucketScoped {
		return 0, ErrNoProbe
	}
	buckets, _, err := h.upstreamBuckets(ctx, r.Upstream)
	if err != nil {
		return 0, err
	}
	for _, b := range buckets {
		if ok, _ := path.Match(r.Pattern, b.Name); ok {
			matched++
		}
	}
	return matched, nil
}

// ErrNoProbe: a glob route whose credentials are minted per bucket names no bucket to
// mint for, and its credentials cannot list buckets.
var ErrNoProbe = errors.New("credentials are minted per bucket, and a glob names no bucket to mint for")

// Routes lists the routes in config order.
func (t *Table) Routes() []*Route { return t.routes }
