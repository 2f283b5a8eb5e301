package proxy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/signer"
)

// Presign limits: S3 presigned URLs live at most 7 days.
const (
	defaultPresignExpiry = 15 * time.Minute
	maxPresignExpiry     = 7 * 24 * time.Hour
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

// Presign returns a URL on the upstream for one request on bucket/key. For accounts that
// mint, the URL is signed with credentials minted for that object alone, living exactly as
// long as the URL (so it cannot outlive them, nor reach anything else); otherwise with the
// account's credentials, until the sooner of expires and their expiry. The route's access
// and prefixes cap what can be presigned.
func (h *Handler) Presign(ctx context.Context, pr PresignRequest) (PresignResponse, *s3Error) {
	method := pr.method()
	if _, ok := presignActions[method]; !ok {
		return PresignResponse{}, &s3Error{status: http.StatusBadRequest, code: "InvalidArgument", msg: "method must be GET, HEAD, PUT or DELETE"}
	}
	expires := defaultPresignExpiry
	if pr.Expires != 0 {
		expires = time.Duration(pr.Expires) * time.Second
	}
	if expires < time.Second || expires > maxPresignExpiry {
		return PresignResponse{}, &s3Error{status: http.StatusBadRequest, code: "InvalidArgument", msg: "expires must be 1 to 604800 seconds"}
	}
	if pr.Key == "" {
		return PresignResponse{}, &s3Error{status: http.StatusBadRequest, code: "InvalidArgument", msg: "key is required"}
	}
	if err := checkKey(pr.Key); err != nil {
		return PresignResponse{}, err
	}
	t := h.acquireTable()
	defer t.release()
	route := t.Lookup(pr.Bucket)
	if route == nil {
		return PresignResponse{}, &s3Error{status: http.StatusNotFound, code: "NoSuchBucket", msg: "bucket " + quote(pr.Bucket) + " is not configured in signet"}
	}
	if route.ReadOnly && !isRead(method) {
		return PresignResponse{}, &s3Error{status: http.StatusForbidden, code: "AccessDenied", msg: "bucket " + quote(pr.Bucket) + " is read-only in signet"}
	}
	if !route.scope.allowsKey(pr.Key) {
		return PresignResponse{}, &s3Error{status: http.StatusForbidden, code: "AccessDenied", msg: "the key is outside the prefixes bucket " + quote(pr.Bucket) + " is limited to"}
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
		if isRead(method) {
			key.Permission = creds.PermObjectReadOnly
		}
		if up.Source == "r2_temp_local" {
			// What the method needs, within what the route allows.
			need := strings.Split(presignActions[method], "\n")
			if key.Actions != "" {
				allowed := strings.Split(key.Actions, "\n")
				need = slices.DeleteFunc(need, func(a string) bool { return !slices.Contains(allowed, a) })
				if len(need) == 0 {
					return PresignResponse{}, &s3Error{status: http.StatusForbidden, code: "AccessDenied", msg: "bucket " + quote(pr.Bucket) + " allows only " + strings.ReplaceAll(key.Actions, "\n", ", ") + " in signet"}
				}
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
		return PresignResponse{}, &s3Error{status: http.StatusInternalServerError, code: "InternalError", msg: err.Error()}
	}
	req.URL.Path, req.URL.RawPath = p, signer.EscapePath(p)
	u, err := h.signer.Presign(ctx, req, c, up.Region, expires, now)
	if err != nil {
		return PresignResponse{}, &s3Error{status: http.StatusInternalServerError, code: "InternalError", msg: "presign: " + err.Error()}
	}
	return PresignResponse{URL: u, Method: method, ExpiresAt: now.Add(expires).UTC().Truncate(time.Second)}, nil
}

// servePresign is POST /_signet/presign on the S3 listener, after ServeHTTP authenticated
// the client, if there are clients: JSON in, JSON out; errors as S3 XML.
func (h *Handler) servePresign(w http.ResponseWriter, r *http.Request, st *state) {
	fail := func(err *s3Error) {
		st.err = err
		writeError(w, r, err, st.id)
	}
	var pr PresignRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxPresignBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(&pr)
	if err == nil {
		// A signed body's hash is checked at its end: read the rest (it is small).
		_, err = io.Copy(io.Discard, io.LimitReader(r.Body, maxPresignBody))
	}
	if be, ok := errors.AsType[*signer.BodyError](err); ok {
		fail(&s3Error{status: be.Status, code: be.Code, msg: be.Message})
		return
	}
	if err != nil {
		fail(&s3Error{status: http.StatusBadRequest, code: "InvalidArgument", msg: "the body must be JSON {bucket, key, method, expires}: " + err.Error()})
		return
	}
	st.req.bucket, st.req.key = pr.Bucket, pr.Key // for the request log
	if st.client != nil {
		if err := st.client.authorize(&http.Request{Method: pr.method()}, s3Request{bucket: pr.Bucket, key: pr.Key}, nil); err != nil {
			fail(err)
			return
		}
	}
	res, serr := h.Presign(r.Context(), pr)
	if serr != nil {
		fail(serr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}
