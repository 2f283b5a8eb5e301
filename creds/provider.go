package creds

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Provider returns credentials for signing a request on the route described by a Key.
//
// Implementations must be safe for concurrent use, must honour ctx (return promptly with
// ctx's error once it is done), and must never return credentials that have expired.
// Errors name what failed without including any secret.
//
// Extra abilities are optional interfaces, found by type assertion: [Invalidator] (drop a
// credential upstream refused), and a Status() []KeyStatus method ([Cache], [File]) for
// readiness checks and expiry metrics.
type Provider interface {
	Retrieve(ctx context.Context, key Key) (aws.Credentials, error)
}

// Key describes what a credential must allow: one upstream bucket, in one jurisdiction,
// with one permission and optional narrower scope. It is comparable so that it can key a
// cache; list-valued fields are newline-joined, sorted, and empty when unset.
type Key struct {
	// Bucket is the upstream bucket name (after any rename).
	Bucket string
	// Jurisdiction is the R2 jurisdiction ("" or "default", "eu", "fedramp", "us").
	Jurisdiction string
	// Host is the upstream endpoint's host, e.g. "<account>.eu.r2.cloudflarestorage.com".
	// R2 local minting uses it as the JWT audience.
	Host string
	// Permission is one of the R2 permissions: PermObjectReadOnly, PermObjectReadWrite,
	// PermAdminReadOnly, PermAdminReadWrite.
	Permission string
	// Prefixes, Objects and Actions narrow the credential further: newline-joined, sorted
	// lists of key prefixes, exact object keys and S3 action names. Empty means unrestricted.
	Prefixes string
	Objects  string
	Actions  string
}

// R2 permissions, as the Cloudflare API and the local-minting JWT `scope` claim spell them.
const (
	PermObjectReadOnly  = "object-read-only"
	PermObjectReadWrite = "object-read-write"
	PermAdminReadOnly   = "admin-read-only"
	PermAdminReadWrite  = "admin-read-write"
)

// ErrNoCredentials is wrapped by providers that have no valid credentials to give: nothing
// minted yet and minting failing, or everything held expired. [Cache] wraps the last mint
// error alongside it, so errors.AsType[*APIError] finds a Cloudflare failure (and its
// Retry-After) through it.
var ErrNoCredentials = errors.New("no valid credentials")

// Static always returns the same long-lived credentials, whatever the key.
type Static struct {
	creds   aws.Credentials
	refused atomic.Int64 // UnixNano of the last Invalidate; 0: never
	now     func() time.Time
}

var (
	_ Provider    = (*Static)(nil)
	_ Invalidator = (*Static)(nil)
)

// NewStatic returns a Provider of fixed credentials. Source names where they came from
// (shown in errors and `signet check`), e.g. "static".
func NewStatic(accessKeyID, secretAccessKey, sessionToken string) *Static {
	return &Static{creds: aws.Credentials{
		AccessKeyID:     accessKeyID,
		SecretAccessKey: secretAccessKey,
		SessionToken:    sessionToken,
		Source:          "static",
	}, now: time.Now}
}

// Retrieve returns the static credentials.
func (s *Static) Retrieve(ctx context.Context, _ Key) (aws.Credentials, error) {
	if err := ctx.Err(); err != nil {
		return aws.Credentials{}, err
	}
	return s.creds, nil
}

// Invalidate records that upstream refused the keys (revoked, say): there is nothing else
// to sign with, but readiness should know (Status).
func (s *Static) Invalidate(Key) { s.refused.Store(s.now().UnixNano()) }

// staticGen is the one generation of credentials a Static holds.
const staticGen = 1

// Status reports the keys as one valid entry with a zero Key, Refused after a recent
// Invalidate.
func (s *Static) Status() []KeyStatus {
	st := KeyStatus{Valid: true}
	if n := s.refused.Load(); n != 0 {
		st.Refused = refusal{at: time.Unix(0, n), gen: staticGen}.counts(staticGen, s.now())
	}
	return []KeyStatus{st}
}
