package config

import (
	"fmt"
	"time"
)

// Config is signet's whole configuration.
type Config struct {
	// Listen is the address the S3 listener binds. Default: `127.0.0.1:9000`.
	Listen string `yaml:"listen"`
	// VirtualHostSuffixes are the host names under which bucket.<suffix> addresses a bucket
	// (virtual-hosted style). A request whose Host is exactly a suffix, an IP address or a
	// single label (such as "localhost") uses path style. Default: `[localhost]`.
	VirtualHostSuffixes []string `yaml:"virtual_host_suffixes"`
	// Accounts are the upstream accounts, by name.
	Accounts map[string]*Account `yaml:"accounts"`
	// Buckets are the routes: which local bucket names go to which account. Exact names are
	// matched before globs; among globs the first match wins.
	Buckets []*Bucket `yaml:"buckets"`
	// Log controls the request log.
	Log Log `yaml:"log"`

	// ZeroConfig is set when the config came from R2_* environment variables rather than a
	// file; ListBuckets is then answered from the upstream account.
	ZeroConfig bool `yaml:"-"`
}

// Account is one upstream: an R2 account (endpoint derived from the account id and the
// route's jurisdiction) or any S3-compatible endpoint.
type Account struct {
	// R2AccountID is the 32-hex-digit Cloudflare account id. With it, the endpoint is
	// https://<id>.r2.cloudflarestorage.com, or https://<id>.<jurisdiction>.r2.cloudflarestorage.com.
	R2AccountID string `yaml:"r2_account_id"`
	// Endpoint is the upstream's base URL. Required without r2_account_id; with it, it
	// overrides the derived host for every jurisdiction (tests, egress proxies).
	Endpoint string `yaml:"endpoint"`
	// Region is the SigV4 signing region. Default: `auto` for R2 accounts, `us-east-1` otherwise.
	Region string `yaml:"region"`
	// Credentials are what signet signs with for this account.
	Credentials Credentials `yaml:"credentials"`
	// ChunkedUpstream is how aws-chunked uploads are forwarded: decode (the payload, with
	// its decoded Content-Length; R2 refuses chunk-signed bodies) or passthrough
	// (STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies with a Content-Length are forwarded framed,
	// only the headers re-signed; other modes are still decoded). Default: `decode`.
	ChunkedUpstream string `yaml:"chunked_upstream"`
}

// ChunkedUpstream values.
const (
	ChunkedDecode      = "decode"
	ChunkedPassthrough = "passthrough"
)

// IsR2 reports whether the account is an R2 account.
func (a *Account) IsR2() bool { return a.R2AccountID != "" }

// Credentials are static keys: a literal value (which may be ${ENV}) or a file holding it.
type Credentials struct {
	AccessKeyID         string `yaml:"access_key_id"`
	AccessKeyIDFile     string `yaml:"access_key_id_file"`
	SecretAccessKey     Secret `yaml:"secret_access_key"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
}

// Access levels of a route.
const (
	AccessReadWrite = "read-write"
	AccessReadOnly  = "read-only"
)

// R2 jurisdictions.
var jurisdictions = []string{"default", "eu", "fedramp", "us"}

// Bucket is one route.
type Bucket struct {
	// Name is the bucket name clients use, or a glob (path.Match syntax) such as "logs-*".
	Name string `yaml:"name"`
	// Account names the entry of accounts that serves this bucket.
	Account string `yaml:"account"`
	// Jurisdiction is the R2 jurisdiction: default, eu, fedramp or us. R2 accounts only.
	// Default: `default`.
	Jurisdiction string `yaml:"jurisdiction"`
	// UpstreamBucket is the bucket's name upstream, when it differs. Not allowed with a glob.
	// Default: the name the client used.
	UpstreamBucket string `yaml:"upstream_bucket"`
	// Access is read-write or read-only; signet itself refuses writes to read-only buckets.
	// Default: `read-write`.
	Access string `yaml:"access"`
}

// IsGlob reports whether the route's name is a pattern.
func (b *Bucket) IsGlob() bool { return isGlob(b.Name) }

// Log configures the request log.
type Log struct {
	// Format is text or json. Default: `text`.
	Format string `yaml:"format"`
	// Level is debug, info, warn or error. Default: `info`.
	Level string `yaml:"level"`
}

// Defaults.
const (
	DefaultListen    = "127.0.0.1:9000"
	DefaultR2Region  = "auto"
	DefaultS3Region  = "us-east-1"
	DefaultLogFormat = "text"
)

// ApplyDefaults fills every unset field with its default. It is idempotent.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.VirtualHostSuffixes == nil {
		c.VirtualHostSuffixes = []string{"localhost"}
	}
	for _, a := range c.Accounts {
		if a == nil {
			continue
		}
		if a.ChunkedUpstream == "" {
			a.ChunkedUpstream = ChunkedDecode
		}
		if a.Region == "" {
			a.Region = DefaultS3Region
			if a.IsR2() {
				a.Region = DefaultR2Region
			}
		}
	}
	for _, b := range c.Buckets {
		if b == nil {
			continue
		}
		if b.Jurisdiction == "" {
			b.Jurisdiction = "default"
		}
		if b.Access == "" {
			b.Access = AccessReadWrite
		}
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
}

// R2Host is the R2 S3 API host of an account in a jurisdiction.
func R2Host(accountID, jurisdiction string) string {
	if jurisdiction == "" || jurisdiction == "default" {
		return accountID + ".r2.cloudflarestorage.com"
	}
	return fmt.Sprintf("%s.%s.r2.cloudflarestorage.com", accountID, jurisdiction)
}

// Duration is a time.Duration written as "30s", "15m" or "1h" in YAML.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
