package proxy

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/signer"
)

// listBucketsResult is S3's ListAllMyBucketsResult.
type listBucketsResult struct {
	XMLName xml.Name `xml:"ListAllMyBucketsResult"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Owner   struct {
		ID          string `xml:"ID"`
		DisplayName string `xml:"DisplayName"`
	} `xml:"Owner"`
	Buckets []listedBucket `xml:"Buckets>Bucket"`
}

type listedBucket struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
}

// maxListBody caps an upstream ListBuckets answer read into memory (a list of names, not
// object data: 100,000 buckets fit).
const maxListBody = 16 << 20

// listBuckets answers GET / from the route table: every exactly-named route, plus, for glob
// routes, the upstream buckets that the globs match, under the names clients use.
func (h *Handler) listBuckets(w http.ResponseWriter, r *http.Request, t *Table, x *exchange) {
	c := x.plan.client
	created := map[string]string{}
	if t.listUpstream {
		for _, up := range t.upstreams {
			if !t.hasGlobFor(up) || up.BucketScoped {
				// Per-bucket credentials cannot list an account's buckets.
				continue
			}
			got, err := h.upstreamBuckets(r.Context(), up)
			if err != nil {
				// An empty or partial list would hide a dead or misconfigured upstream
				// behind a 200: the client gets the cause instead.
				x.err = statusError(r, nil, fmt.Errorf("list the buckets of account %s at %s: %w", up.Account, up.URL, err))
				writeError(w, r, x.err, x.plan.id)
				return
			}
			for _, b := range got {
				if rt := t.Lookup(b.Name); rt != nil && rt.Upstream == up && rt.Rename == "" {
					created[b.Name] = b.CreationDate
				}
			}
		}
	}
	for name := range t.exact {
		if _, ok := created[name]; !ok {
			created[name] = t.created.Format("2006-01-02T15:04:05.000Z")
		}
	}
	names := make([]string, 0, len(created))
	for n := range created {
		// Listed when the client could reach the bucket at all.
		if authorize(c, t.Lookup(n), access{action: actHeadBucket, bucket: n}) == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	res := listBucketsResult{Xmlns: "http://s3.amazonaws.com/doc/2006-03-01/"}
	res.Owner.ID, res.Owner.DisplayName = "signet", "signet"
	for _, n := range names {
		res.Buckets = append(res.Buckets, listedBucket{Name: n, CreationDate: created[n]})
	}
	body, err := xml.Marshal(res)
	if err != nil {
		writeError(w, r, &s3Error{status: http.StatusInternalServerError, code: "InternalError", msg: err.Error()}, x.plan.id)
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

// upstreamBuckets asks an upstream for its bucket list.
func (h *Handler) upstreamBuckets(ctx context.Context, up *Upstream) ([]listedBucket, error) {
	// No timeout of its own: the account's transport bounds each phase but the body, whose
	// size is capped below.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, up.URL.String()+"/", nil)
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
	return res.Buckets, nil
}
