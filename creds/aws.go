package creds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// AWSOptions configures an [AWS] source. Zero values take the SDK's defaults.
type AWSOptions struct {
	// Region is the region of STS calls (regional STS endpoints). Default: the SDK's
	// (AWS_REGION, the profile's region).
	Region string
	// Profile is the shared config profile to take credentials from. Default: the SDK's
	// (AWS_PROFILE, else the default chain).
	Profile string
	// RoleARN, when set, is assumed (STS AssumeRole) with the chain's credentials.
	RoleARN string
	// ExternalID, SessionName and Duration go with RoleARN's AssumeRole. Defaults: none,
	// the SDK's session name, the SDK's 15m; config gives signet's own defaults.
	ExternalID  string
	SessionName string
	Duration    time.Duration
	// STSEndpoint replaces the endpoint of every STS client of the chain: RoleARN's, web
	// identity's, a profile role's. Default: the SDK's regional endpoint.
	STSEndpoint string
	// LoadOptions are passed to config.LoadDefaultConfig after signet's own. Default: none.
	LoadOptions []func(*awsconfig.LoadOptions) error
}

// AWS is a [Minter] of the credentials the AWS SDK for Go's providers fetch: the default
// chain or a profile (environment, shared files with credential_process and SSO, web
// identity, container credentials, instance metadata), then optionally an AssumeRole. It
// ignores the key: wrap it with [NewAccountCache], which holds one credential for all keys.
//
// The SDK wraps what it resolves in its own aws.CredentialsCache, which would hand back
// the same credential until it expires and so defeat signet's early refresh; Mint empties
// it before each fetch, so every Mint really asks the provider (and re-reads token files,
// which the SDK's web identity and container providers do on each fetch). Its
// ExpiryWindow is zero, so Expires is the provider's own and signet's SafetyMargin alone
// decides when a credential is too old. SDK retries are off: the [Cache] retries, with
// backoff, and keeps the last good credential meanwhile.
type AWS struct {
	provider aws.CredentialsProvider
	caches   []*aws.CredentialsCache // SDK caches between signet and the providers
}

var _ Minter = (*AWS)(nil)

// NewAWS resolves the SDK's credential provider. Loading reads only the environment and
// the shared config files; nothing is fetched until Mint.
func NewAWS(optFns ...func(*AWSOptions)) (*AWS, error) {
	var o AWSOptions
	for _, fn := range optFns {
		fn(&o)
	}
	load := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		awsconfig.WithCredentialsCacheOptions(func(c *aws.CredentialsCacheOptions) {
			c.ExpiryWindow, c.ExpiryWindowJitterFrac = 0, 0
		}),
	}
	if o.Region != "" {
		load = append(load, awsconfig.WithRegion(o.Region))
	}
	if o.Profile != "" {
		load = append(load, awsconfig.WithSharedConfigProfile(o.Profile))
	}
	if o.STSEndpoint != "" {
		// The chain's own STS clients (web identity, a profile's role) are built while the
		// config loads, before service options apply: swap each for one at STSEndpoint.
		load = append(load,
			awsconfig.WithWebIdentityRoleCredentialOptions(func(w *stscreds.WebIdentityRoleOptions) {
				if c, ok := w.Client.(*sts.Client); ok {
					w.Client = stsAt(c, o.STSEndpoint)
				}
			}),
			awsconfig.WithAssumeRoleCredentialOptions(func(ar *stscreds.AssumeRoleOptions) {
				if c, ok := ar.Client.(*sts.Client); ok {
					ar.Client = stsAt(c, o.STSEndpoint)
				}
			}))
	}
	load = append(load, o.LoadOptions...)
	// LoadDefaultConfig does no network I/O, so no caller's context is needed here.
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), load...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, errors.New("load aws config: no credential provider")
	}
	a := &AWS{provider: cfg.Credentials}
	if c, ok := cfg.Credentials.(*aws.CredentialsCache); ok && o.RoleARN == "" {
		// Emptied before each fetch (see Mint). Under a role it is left alone: the role's
		// credentials are what signet caches, and the SDK refreshes the ones it assumes the
		// role with when they expire, so each role refresh is one STS call, not two fetches.
		a.caches = append(a.caches, c)
	}
	if o.RoleARN != "" {
		client := sts.NewFromConfig(cfg)
		if o.STSEndpoint != "" {
			client = stsAt(client, o.STSEndpoint)
		}
		a.provider = stscreds.NewAssumeRoleProvider(client, o.RoleARN, func(ar *stscreds.AssumeRoleOptions) {
			if o.SessionName != "" {
				ar.RoleSessionName = o.SessionName
			}
			if o.Duration != 0 {
				ar.Duration = o.Duration
			}
			if o.ExternalID != "" {
				ar.ExternalID = aws.String(o.ExternalID)
			}
		})
	}
	return a, nil
}

// stsAt is c with its endpoint replaced, and everything else (credentials, region) kept.
func stsAt(c *sts.Client, endpoint string) *sts.Client {
	opts := c.Options()
	opts.BaseEndpoint = aws.String(endpoint)
	return sts.New(opts)
}

// Mint fetches credentials from the SDK's provider, whatever the key.
func (a *AWS) Mint(ctx context.Context, _ Key) (aws.Credentials, error) {
	for _, c := range a.caches {
		c.Invalidate()
	}
	cr, err := a.provider.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("fetch aws credentials: %w", safeAWSError(err))
	}
	if !cr.HasKeys() {
		// A container endpoint's 200 with an error document decodes to empty keys
		// (nginx-s3-gateway #537 cached such an answer as credentials).
		return aws.Credentials{}, fmt.Errorf("fetch aws credentials: %s answered without keys", cr.Source)
	}
	return cr, nil
}

// safeAWSError keeps secrets out of an SDK error. processcreds quotes the whole output of
// a credential_process it cannot parse ("parse failed of process output: %s"), secret
// access key included; only the JSON decoder's own error is kept from it.
func safeAWSError(err error) error {
	if pe, ok := errors.AsType[*processcreds.ProviderError](err); ok && strings.Contains(pe.Error(), "process output:") {
		var detail string
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			detail = fmt.Sprintf("invalid JSON at byte %d", se.Offset)
		} else if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			detail = fmt.Sprintf("field %s holds a %s", te.Field, te.Value)
		} else {
			detail = "not the documented JSON"
		}
		return fmt.Errorf("credential_process output (not shown: it may hold secrets): %s", detail)
	}
	return err
}

// AccountCache is a [Provider] of one credential for every key, held by a [Cache]: for
// sources whose credentials are the account's, not a bucket's, so that all routes share
// one fetch and one refresh. It passes on Invalidate, Status and Close.
type AccountCache struct {
	cache *Cache
}

var (
	_ Provider    = (*AccountCache)(nil)
	_ Invalidator = (*AccountCache)(nil)
)

// NewAccountCache returns an AccountCache over m, a Minter that ignores the key.
func NewAccountCache(m Minter, optFns ...func(*CacheOptions)) (*AccountCache, error) {
	c, err := NewCache(m, optFns...)
	if err != nil {
		return nil, err
	}
	return &AccountCache{cache: c}, nil
}

// accountKey is the one key an AccountCache holds: the zero Key, as [File.Status] reports.
var accountKey = Key{}

// Retrieve returns the account's credential, whatever the key.
func (a *AccountCache) Retrieve(ctx context.Context, _ Key) (aws.Credentials, error) {
	return a.cache.Retrieve(ctx, accountKey)
}

// Invalidate drops the account's credential, whichever key was refused.
func (a *AccountCache) Invalidate(Key) { a.cache.Invalidate(accountKey) }

// Status reports the account's credential as one entry with a zero Key.
func (a *AccountCache) Status() []KeyStatus { return a.cache.Status() }

// Close stops the cache's refreshing.
func (a *AccountCache) Close() error { return a.cache.Close() }
