package creds

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/golang-jwt/jwt/v5"

	"github.com/signet-proxy/signet/config"
)

// R2LocalOptions tunes an [R2Local]. Zero values take the defaults.
type R2LocalOptions struct {
	// TTL is each credential's lifetime, in whole seconds, at most [MaxR2TTL].
	// Default: `15m`.
	TTL time.Duration
	// Now is the clock for the iat and exp claims. Default: time.Now.
	Now func() time.Time
}

// R2Local mints R2 temporary credentials without a network call, as Cloudflare documents
// ("Authenticate against R2 with temporary credentials", client-side signing): a JWT signed
// with the parent's secret becomes the session token. It is a [Minter]; minting is cheap,
// but wrap it in a [Cache] all the same so that each credential set is reused, with one v4
// signer, for its lifetime.
type R2Local struct {
	accountID    string
	parentKeyID  string
	parentSecret []byte
	opts         R2LocalOptions
}

var _ Minter = (*R2Local)(nil)

// NewR2Local returns an R2Local for accountID and the parent R2 API token's S3 credentials
// (Access Key ID and Secret Access Key), whose permissions the minted credentials narrow.
func NewR2Local(accountID, parentAccessKeyID, parentSecretAccessKey string, optFns ...func(*R2LocalOptions)) (*R2Local, error) {
	var o R2LocalOptions
	for _, fn := range optFns {
		fn(&o)
	}
	o.TTL = cmp.Or(o.TTL, config.DefaultR2LocalTTL)
	if o.Now == nil {
		o.Now = time.Now
	}
	var errs []error
	if accountID == "" {
		errs = append(errs, errors.New("account id is empty"))
	}
	if parentAccessKeyID == "" {
		errs = append(errs, errors.New("parent access key id is empty"))
	}
	if parentSecretAccessKey == "" {
		errs = append(errs, errors.New("parent secret access key is empty"))
	}
	if err := checkTTL(o.TTL); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("r2 local minter: %w", err)
	}
	return &R2Local{
		accountID:    accountID,
		parentKeyID:  parentAccessKeyID,
		parentSecret: []byte(parentSecretAccessKey),
		opts:         o,
	}, nil
}

// String describes m without its secret.
func (m *R2Local) String() string {
	return fmt.Sprintf("r2 local minter (account %s, parent key %s)", m.accountID, m.parentKeyID)
}

// GoString is String, so that %#v cannot print the secret either.
func (m *R2Local) GoString() string { return m.String() }

// LogValue logs m without its secret.
func (m *R2Local) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("source", "r2local"),
		slog.String("account", m.accountID),
		slog.String("parent_key", m.parentKeyID),
	)
}

// Mint signs a JWT for key and derives the credential from it:
//
//   - claims: bucket = key.Bucket, scope = key.Permission, actions = key.Actions (omitted
//     when empty), paths = {prefixPaths: key.Prefixes, objectPaths: key.Objects} (omitted
//     when both are empty, an empty list omitted), sub = account id, iss = parent access
//     key id, aud = key.Host, iat = now, exp = now + TTL;
//   - Access Key ID = the parent's; Secret Access Key = lowercase hex SHA-256 of the signed
//     JWT; Session Token = base64 (standard, padded) of "jwt/" + the signed JWT.
//
// The Access Key ID is the same for every credential while the secret changes: never let a
// v4 signer's key cache see two of them (see the package documentation).
func (m *R2Local) Mint(ctx context.Context, key Key) (aws.Credentials, error) {
	return m.MintTTL(ctx, key, m.opts.TTL)
}

// MintTTL is Mint with a lifetime of its own (whole seconds, at most [MaxR2TTL]).
func (m *R2Local) MintTTL(ctx context.Context, key Key, ttl time.Duration) (aws.Credentials, error) {
	if err := checkTTL(ttl); err != nil {
		return aws.Credentials{}, fmt.Errorf("mint r2 credentials for %s: %w", key.Bucket, err)
	}
	if err := ctx.Err(); err != nil {
		return aws.Credentials{}, err
	}
	cr, err := m.mint(key, ttl)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("mint r2 credentials for %s: %w", key.Bucket, err)
	}
	return cr, nil
}

func (m *R2Local) mint(key Key, ttl time.Duration) (aws.Credentials, error) {
	var errs []error
	if key.Bucket == "" {
		errs = append(errs, errors.New("bucket is empty"))
	}
	if key.Host == "" {
		errs = append(errs, errors.New("host (the jwt audience) is empty"))
	}
	if !ValidPermission(key.Permission) {
		errs = append(errs, fmt.Errorf("permission %q: must be one of %s, %s, %s, %s", key.Permission,
			PermObjectReadOnly, PermObjectReadWrite, PermAdminReadOnly, PermAdminReadWrite))
	}
	actions := splitList(key.Actions)
	for _, a := range actions {
		if !ValidAction(a) {
			errs = append(errs, fmt.Errorf("action %q is not one R2 temporary credentials can grant", a))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return aws.Credentials{}, err
	}

	iat := m.opts.Now().Truncate(time.Second)
	exp := iat.Add(ttl.Truncate(time.Second))
	claims := jwt.MapClaims{
		"bucket": key.Bucket,
		"scope":  key.Permission,
		"sub":    m.accountID,
		"iss":    m.parentKeyID,
		"aud":    key.Host, // a string, as Cloudflare's example (jose setAudience) sends it
		"iat":    iat.Unix(),
		"exp":    exp.Unix(),
	}
	if len(actions) > 0 {
		claims["actions"] = actions
	}
	paths := map[string][]string{}
	if p := splitList(key.Prefixes); len(p) > 0 {
		paths["prefixPaths"] = p
	}
	if o := splitList(key.Objects); len(o) > 0 {
		paths["objectPaths"] = o
	}
	if len(paths) > 0 {
		claims["paths"] = paths
	}
	// NewWithClaims sets the header {"alg":"HS256","typ":"JWT"}.
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(m.parentSecret)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("sign jwt: %w", err)
	}
	sum := sha256.Sum256([]byte(signed))
	return aws.Credentials{
		AccessKeyID:     m.parentKeyID,
		SecretAccessKey: hex.EncodeToString(sum[:]),
		SessionToken:    base64.StdEncoding.EncodeToString([]byte("jwt/" + signed)),
		Source:          "r2local",
		CanExpire:       true,
		Expires:         exp,
	}, nil
}

// ValidAction reports whether name is an S3 action that R2 temporary credentials can be
// narrowed to (the JWT's actions claim).
func ValidAction(name string) bool {
	return slices.Contains(config.R2Actions(), name)
}
