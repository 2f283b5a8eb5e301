package proxy

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/signer"
)

// listBucketsResult is S3's ListAllMyBucketsResult.
type listBucketsResult struct {
	XMLName xml.Name       `xml:"ListAllMyBucketsResult"`
	Xmlns   string         `xml:"xmlns,attr,omitempty"`
	Owner   bucketOwner    `xml:"Owner"`
	Buckets []listedBucket `xml:"Buckets>Bucket"`
	// ContinuationToken, when set, asks for the next page.
	ContinuationToken string `xml:"ContinuationToken,omitempty"`
	Prefix            string `xml:"Prefix,omitempty"`
}

type bucketOwner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName,omitempty"`
}

type listedBucket struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
	BucketRegion string `xml:"BucketRegion,omitempty"`
}

// maxListBody caps an upstream ListBuckets answer read into memory (a list of names, not
// object data: 100,000 buckets fit).
const maxListBody = 16 << 20

// Paging, as S3 has it: max-buckets is 1 to 10000, and without it S3 answers every bucket.
const (
	maxListBuckets = 10000
	// maxListPages bounds how many pages of one upstream's listing are followed.
	maxListPages = 1000
)

// listParams are a ListBuckets request's query parameters.
type listParams struct {
	prefix, region string
	max            int    // 0: no limit
	after          string // the last name of the previous page; "" for the first page
}

func parseListParams(q url.Values) (listParams, *s3Error) {
	lp := listParams{prefix: q.Get("prefix"), region: q.Get("bucket-region")}
	if v := q.Get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListBuckets {
			return lp, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: fmt.Sprintf("max-buckets must be an integer from 1 to %d", maxListBuckets)}
		}
		lp.max = n
	}
	if v := q.Get("continuation-token"); v != "" {
		// signet's token is the last name of the page before, base64url: bucket names
		// are short and public to whoever may list them.
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			return lp, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "the continuation token is not one signet issued"}
		}
		lp.after = string(b)
	}
	return lp, nil
}

// listBuckets answers GET / from the route table: every exactly-named route, plus, for glob
// routes, the upstream buckets that the globs match, under the names clients use. prefix,
// bucket-region, max-buckets and continuation-token apply to that merged list; each
// upstream's own listing is followed to its end. The Owner is the upstream's when exactly
// one upstream was asked.
func (h *Handler) listBuckets(w http.ResponseWriter, r *http.Request, t *Table, x *exchange) {
	lp, perr := parseListParams(x.plan.query)
	if perr != nil {
		x.err = perr
		writeError(w, r, perr, x.plan.id)
		return
	}
	c := x.plan.client
	listed := map[string]listedBucket{}
	var owners []bucketOwner
	if t.listUpstream {
		for _, up := range t.upstreams {
			if !t.hasGlobFor(up) || up.BucketScoped {
				// Per-bucket credentials cannot list an account's buckets.
				continue
			}
			got, owner, err := h.upstreamBuckets(r.Context(), up)
			if err != nil {
				// An empty or partial list would hide a dead or misconfigured upstream
				// behind a 200: the client gets the cause instead.
				x.err = statusError(r, nil, fmt.Errorf("list the buckets of account %s at %s: %w", up.Account, up.URL, err))
				writeError(w, r, x.err, x.plan.id)
				return
			}
			owners = append(owners, owner)
			for _, b := range got {
				if rt := t.Lookup(b.Name); rt != nil && rt.Upstream == up && rt.Rename == "" {
					listed[b.Name] = b
				}
			}
		}
	}
	for name, rt := range t.exact {
		if _, ok := listed[name]; !ok {
			listed[name] = listedBucket{Name: name, CreationDate: t.created.Format("2006-01-02T15:04:05.000Z"), BucketRegion: rt.Upstream.Region}
		}
	}
	names := make([]string, 0, len(listed))
	for n, b := range listed {
		switch {
		case !strings.HasPrefix(n, lp.prefix), n <= lp.after, lp.region != "" && b.BucketRegion != lp.region:
		case authorize(c, t.Lookup(n), access{action: actHeadBucket, bucket: n}) == nil:
			// Listed when the client could reach the bucket at all.
			names = append(names, n)
		}
	}
	slices.Sort(names)
	res := listBucketsResult{Xmlns: "http://s3.amazonaws.com/doc/2006-03-01/", Prefix: lp.prefix,
		Owner: bucketOwner{ID: "signet", DisplayName: "signet"}}
	if len(owners) == 1 && owners[0].ID != "" {
		res.Owner = owners[0]
	}
	if lp.max > 0 && len(names) > lp.max {
		names = names[:lp.max]
		res.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(names[len(names)-1]))
	}
	for _, n := range names {
		res.Buckets = append(res.Buckets, listed[n])
	}
	body, err := xml.Marshal(res)
	if err != nil {
		writeError(w, r, &s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: err.Error()}, x.plan.id)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(body)
}

func (t *Table) hasGlobFor(up *Upstream) bool {
	for _, r := range t.globs {
		if r.Upstream == up {
			return true
		}
	}
	return false
}

// upstreamBuckets asks an upstream for its bucket list, following its pages, and returns
// it with the upstream's Owner.
func (h *Handler) upstreamBuckets(ctx context.Context, up *Upstream) ([]listedBucket, bucketOwner, error) {
	// No timeout of its own: the account's transport bounds each phase of each page but
	// the body, whose size is capped; the client's context ends it too.
	var all []listedBucket
	var owner bucketOwner
	token := ""
	for range maxListPages {
		res, err := h.upstreamBucketsPage(ctx, up, token)
		if err != nil {
			return nil, owner, err
		}
		all, owner = append(all, res.Buckets...), res.Owner
		if res.ContinuationToken == "" || res.ContinuationToken == token {
			return all, owner, nil
		}
		token = res.ContinuationToken
	}
	return nil, owner, fmt.Errorf("bucket listing longer than %d pages", maxListPages)
}

func (h *Handler) upstreamBucketsPage(ctx context.Context, up *Upstream, token string) (*listBucketsResult, error) {
	u := up.URL.String() + "/"
	if token != "" {
		u += "?" + url.Values{"continuation-token": {token}, "max-buckets": {strconv.Itoa(maxListBuckets)}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	c, err := up.Creds.Retrieve(ctx, creds.Key{Jurisdiction: up.Jurisdiction, Host: up.Host, Permission: creds.PermAdminReadOnly})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCredentials, err)
	}
	if err := h.signer.Sign(ctx, req, c, up.Region, signer.UnsignedPayload, h.opts.Now()); err != nil {
		return nil, err
	}
	resp, err := h.transport(up).RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxListBody))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, upstreamError(resp.Status, body)
	}
	var res listBucketsResult
	if err := xml.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("parse ListBuckets answer: %w", err)
	}
	return &res, nil
}
