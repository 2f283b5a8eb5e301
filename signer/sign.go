package signer

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// UnsignedPayload is the payload hash signet signs with: bodies stream through unhashed.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// Signer signs requests for the S3 service. It is safe for concurrent use and holds no
// credentials of its own beyond the v4 signers it keeps per credential set.
type Signer struct {
	signers v4Cache
}

// v4Cache keeps one v4.Signer per credential set: the SDK caches derived keys by access key
// id and day, never by secret, so a signer shared across secrets would sign with a stale key
// (see the package doc), while a signer per request would derive the key every time.
type v4Cache struct {
	// m maps credKey to *v4.Signer: read on every request, written once per new credential
	// set, so a sync.Map spares the hot path a shared lock.
	m sync.Map
	n atomic.Int64
}

// credKey identifies a credential set: everything that changes the derived signing key or
// what is sent.
type credKey struct{ id, secret, token string }

// maxSigners bounds a v4Cache. Credential sets come and go as they are refreshed; when the
// bound is reached the cache starts again, which costs one key derivation each.
const maxSigners = 256

func (c *v4Cache) get(cr aws.Credentials) *v4.Signer {
	k := credKey{cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken}
	if v, ok := c.m.Load(k); ok {
		return v.(*v4.Signer)
	}
	if c.n.Load() >= maxSigners {
		c.m.Clear()
		c.n.Store(0)
	}
	v, loaded := c.m.LoadOrStore(k, v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }))
	if !loaded {
		c.n.Add(1)
	}
	return v.(*v4.Signer)
}

// NewSigner returns a Signer.
func NewSigner() *Signer { return &Signer{} }

// Sign signs req in place for service s3 in region at now, declaring payloadHash
// (UnsignedPayload, or a STREAMING-* value for a body forwarded framed) as
// X-Amz-Content-Sha256. req's URL must already carry the escaped path (see EscapePath) and
// the final query.
func (s *Signer) Sign(ctx context.Context, req *http.Request, c aws.Credentials, region, payloadHash string, now time.Time) error {
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if c.SessionToken == "" {
		req.Header.Del("X-Amz-Security-Token")
	}
	return s.signers.get(c).SignHTTP(ctx, c, req, payloadHash, "s3", region, now)
}

// Presign returns req's URL presigned for service s3 in region, valid for expires from
// now (at most 7 days), with UNSIGNED-PAYLOAD: anyone holding the URL can make that one
// request until it expires or the credentials do.
func (s *Signer) Presign(ctx context.Context, req *http.Request, c aws.Credentials, region string, expires time.Duration, now time.Time) (string, error) {
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
	req.URL.RawQuery = q.Encode()
	u, _, err := s.signers.get(c).PresignHTTP(ctx, c, req, UnsignedPayload, "s3", region, now)
	return u, err
}

// authHeaders are the request headers that carry a client's own authentication.
var authHeaders = []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"}

// authParams are the query parameters of presigned SigV4 and SigV2 URLs.
var authParams = []string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
	"AWSAccessKeyId", "Signature", "Expires",
}

// Strip removes the client's authentication from h and query, and lowercases
// x-amz-meta-* header names. It reports whether the query changed.
func Strip(h http.Header, query url.Values) (queryChanged bool) {
	for _, k := range authHeaders {
		delete(h, k)
	}
	LowercaseMeta(h)
	for _, p := range authParams {
		if _, ok := query[p]; ok {
			delete(query, p)
			queryChanged = true
		}
	}
	return queryChanged
}

// LowercaseMeta renames h's x-amz-meta-* headers to lowercase, the spelling S3 stores and
// returns. Go canonicalizes header names (X-Amz-Meta-Sha256), and SDKs such as boto3 take
// user metadata keys from the names as sent, case and all.
func LowercaseMeta(h http.Header) {
	for k, v := range h {
		if len(k) > len("X-Amz-Meta-") && strings.EqualFold(k[:len("X-Amz-Meta-")], "X-Amz-Meta-") {
			if lk := strings.ToLower(k); lk != k {
				delete(h, k)
				h[lk] = append(h[lk], v...)
			}
		}
	}
}

// EscapePath percent-encodes p with AWS's rule: every byte except A-Z a-z 0-9 - _ . ~ and /.
func EscapePath(p string) string {
	n := 0
	for i := 0; i < len(p); i++ {
		if !unreserved(p[i]) {
			n++
		}
	}
	if n == 0 {
		return p
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(p)+2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if unreserved(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func unreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~' || c == '/'
}
