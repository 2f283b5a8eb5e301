package proxy

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/signer"
)

// Presign limits: S3 presigned URLs live at most 7 days.
const (
	defaultPresignExpiry = 15 * time.Minute
	maxPresignExpiry     = config.MaxR2TTL // the 7-day cap has one owner
	maxPresignBody       = 64 << 10
)

// presignPath is the S3 listener's presign endpoint. It is served there, not on the admin
// listener, so that it reaches no further than the listener does: with client identities,
// only signed requests, each for what its client may do itself.
const presignPath = "/_signet/presign"

// PresignRequest asks for a presigned URL on the upstream: POST /_signet/presign.
type PresignRequest struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// Method is GET, HEAD, PUT or DELETE. Default: GET.
	Method string `json:"method"`
	// Expires is the URL's lifetime in seconds (1 to 604800). Default: 900.
	Expires int `json:"expires"`
}

// method is the HTTP method the URL is for.
func (pr PresignRequest) method() string { return strings.ToUpper(cmp.Or(pr.Method, http.MethodGet)) }

// PresignResponse is the answer: a URL on the real upstream, usable with no signet
// between, and when it stops working.
type PresignResponse struct {
	URL       string    `json:"url"`
	Method    string    `json:"method"`
	ExpiresAt time.Time `json:"expires_at"`
}

// presignActions narrow locally minted credentials to what the URL's method needs.
var presignActions = map[string]string{
	http.MethodGet:    "GetObject\nHeadObject",
	http.MethodHead:   "GetObject\nHeadObject",
	http.MethodPut:    "PutObject",
	http.MethodDelete: "DeleteObject",
}

// presign returns a URL on the upstream for one request on bucket/key, for client c (nil
// without client identities). For accounts that mint, the URL is signed with credentials
// minted for that object alone, living exactly as long as the URL (so it cannot outlive
// them, nor reach anything else); otherwise with the account's credentials, until the
// sooner of expires and their expiry. What the client and the route may do caps what can be
// presigned: authorize decides, as for the request itself.
func (h *Handler) presign(ctx context.Context, t *Table, cl *client, pr PresignRequest) (PresignResponse, *s3Error) {
	method := pr.method()
	if _, ok := presignActions[method]; !ok {
		return PresignResponse{}, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "method must be GET, HEAD, PUT or DELETE"}
	}
	expires := defaultPresignExpiry
	if pr.Expires != 0 {
		expires = time.Duration(pr.Expires) * time.Second
	}
	if expires < time.Second || expires > maxPresignExpiry {
		return PresignResponse{}, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "expires must be 1 to 604800 seconds"}
	}
	if pr.Key == "" {
		return PresignResponse{}, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "key is required"}
	}
	if err := checkKey(pr.Key); err != nil {
		return PresignResponse{}, err
	}
	if err := config.CheckBucketName(pr.Bucket); err != nil {
		return PresignResponse{}, &s3Error{Status: http.StatusBadRequest, Code: "InvalidBucketName", Message: err.Error()}
	}
	route := t.Lookup(pr.Bucket)
	act := classify(method, pr.Bucket, pr.Key, nil, false)
	if err := authorize(cl, route, access{action: act, write: writes(method), bucket: pr.Bucket, key: pr.Key}); err != nil {
		return PresignResponse{}, err
	}

	up := route.Upstream
	key := route.credKey(pr.Bucket)
	now := h.opts.Now()
	var c aws.Credentials
	minted := false
	if m, ok := up.Creds.(interface {
		MintTTL(context.Context, creds.Key, time.Duration) (aws.Credentials, bool, error)
	}); ok {
		key.Prefixes, key.Objects = "", pr.Key
		key.Permission = creds.PermObjectReadWrite
		if !writes(method) {
			key.Permission = creds.PermObjectReadOnly
		}
		if up.Source == "r2_temp_local" {
			// What the method needs, within what the route allows (authorize made sure
			// the method's own action is among them).
			need := strings.Split(presignActions[method], "\n")
			if len(route.actions) > 0 {
				need = slices.DeleteFunc(need, func(a string) bool { return !slices.Contains(route.actions, a) })
			}
			key.Actions = strings.Join(need, "\n")
		}
		var err error
		if c, minted, err = m.MintTTL(ctx, key, expires); err != nil {
			return PresignResponse{}, statusError(&http.Request{}, nil, fmt.Errorf("%w: %w", errCredentials, err))
		}
	}
	if !minted {
		var err error
		if c, err = up.Creds.Retrieve(ctx, key); err != nil {
			return PresignResponse{}, statusError(&http.Request{}, nil, fmt.Errorf("%w: %w", errCredentials, err))
		}
		if c.CanExpire && c.Expires.Sub(now) < expires {
			expires = c.Expires.Sub(now).Truncate(time.Second)
		}
	}

	p := "/" + route.UpstreamBucket(pr.Bucket) + "/" + pr.Key
	req, err := http.NewRequestWithContext(ctx, method, up.URL.String(), nil)
	if err != nil {
		return PresignResponse{}, &s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: err.Error()}
	}
	req.URL.Path, req.URL.RawPath = p, signer.EscapePath(p)
	u, err := h.signer.Presign(ctx, req, c, up.Region, expires, now)
	if err != nil {
		return PresignResponse{}, &s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: "presign: " + err.Error()}
	}
	return PresignResponse{URL: u, Method: method, ExpiresAt: now.Add(expires).UTC().Truncate(time.Second)}, nil
}

// servePresign is POST /_signet/presign on the S3 listener, after ServeHTTP authenticated
// the client, if there are clients: JSON in, JSON out; errors as S3 XML.
func (h *Handler) servePresign(w http.ResponseWriter, r *http.Request, t *Table, x *exchange) {
	fail := func(err *s3Error) {
		x.err = err
		writeError(w, r, err, x.plan.id)
	}
	var pr PresignRequest
	var body io.Reader = http.NoBody
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		if body, _, err = openBody(r, x.plan); err != nil { // verified against the client's signed payload hash
			fail(bodyS3Error(err, "InvalidArgument", ""))
			return
		}
	}
	dec := json.NewDecoder(io.LimitReader(body, maxPresignBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(&pr)
	if err == nil {
		// A signed body's hash is checked at its end: read the rest (it is small).
		_, err = io.Copy(io.Discard, io.LimitReader(body, maxPresignBody))
	}
	if err != nil {
		fail(bodyS3Error(err, "InvalidArgument", ""))
		if x.err.Code == "InvalidArgument" {
			x.err.Message = "the body must be JSON {bucket, key, method, expires}: " + err.Error()
		}
		return
	}
	x.presign = &pr
	res, serr := h.presign(r.Context(), t, x.plan.client, pr)
	if serr != nil {
		fail(serr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}
