package config

import (
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
	// TLS serves the S3 listener over HTTPS. Default: plain HTTP.
	TLS TLS `yaml:"tls"`
	// AdminListen is the address of /healthz, /readyz and /metrics, or "off".
	// Default: `127.0.0.1:9001`.
	AdminListen string `yaml:"admin_listen"`
	// Clients are the apps allowed in, each with signet-only keys its S3 SDK signs with.
	// Once any is set, every request must carry a valid signature of one of them. Default:
	// none (anyone who can connect may use every route: keep listen on loopback).
	Clients []*Client `yaml:"clients"`
	// AllowAnonymousNetwork lets serve listen beyond loopback with no clients configured.
	// Default: `false`.
	AllowAnonymousNetwork bool `yaml:"allow_anonymous_network"`
	// MaxConcurrentRequests caps requests served at once; beyond it clients get 503 SlowDown.
	// Default: `1024`.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// ShutdownTimeout bounds how long a stopping signet waits for requests in flight.
	// Default: `30s`.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// AllowedOrigins are the web origins (scheme://host[:port]) whose pages may call signet
	// from a browser; signet answers their CORS preflights itself. Every other cross-site
	// browser request is refused, so that no website can drive a signet on the user's
	// machine. Default: none.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// BodyIdleTimeout ends a request whose body, or whose answer's body, moves no byte for
	// this long, whichever side stalled (the client or the upstream): the client gets 400
	// RequestTimeout or 504, and an upload is never completed upstream. A slow transfer
	// that keeps moving is never cut. Default: `1m`.
	BodyIdleTimeout Duration `yaml:"body_idle_timeout"`
	// MaxConnectionsPerAddress bounds the connections open at once from one client IP
	// address on the S3 listener; beyond it new ones are closed at once. Default: `1024`.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`

	// ZeroConfig is set when the config came from R2_* environment variables rather than a
	// file; ListBuckets is then answered from the upstream account.
	ZeroConfig bool `yaml:"-"`

	// fromEnv holds the secrets that the file gives only as ${NAME} references, so that
	// HasInlineSecrets knows they are not written in it. Set by Parse.
	fromEnv map[*Secret]bool
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
	// Timeouts bound the phases of each request to this account's upstream.
	Timeouts Timeouts `yaml:"timeouts"`
}

// Timeouts bound how long signet waits on an upstream, phase by phase, so that a dead or
// hung upstream costs a client a 504 within a minute rather than a hung request. None
// bounds a body in flight, so a long download or upload is never cut; a body that stalls
// is BodyIdleTimeout's.
type Timeouts struct {
	// Dial bounds opening a TCP connection (DNS included). Default: `5s`.
	Dial Duration `yaml:"dial"`
	// TLSHandshake bounds the TLS handshake. Default: `10s`.
	TLSHandshake Duration `yaml:"tls_handshake"`
	// ResponseHeader bounds the wait for the response headers once the request, body
	// included, is sent (a large CompleteMultipartUpload may take a while). Default: `30s`.
	ResponseHeader Duration `yaml:"response_header"`
}

// An account's upstream timeouts when the config sets none: together under a minute, so
// a client of an upstream that accepts connections and never answers gets its 504 well
// before its own SDK gives up.
const (
	DefaultDialTimeout           = Duration(5 * time.Second)
	DefaultTLSHandshakeTimeout   = Duration(10 * time.Second)
	DefaultResponseHeaderTimeout = Duration(30 * time.Second)
)

// IsR2 reports whether the account is an R2 account.
func (a *Account) IsR2() bool { return a.R2AccountID != "" }

// Credentials say what an account signs with: exactly one source. Static keys are given
// at this level (a literal value, which may be ${ENV}, or a _file holding it); the other
// sources each have their own section.
type Credentials struct {
	AccessKeyID         string `yaml:"access_key_id"`
	AccessKeyIDFile     string `yaml:"access_key_id_file"`
	SecretAccessKey     Secret `yaml:"secret_access_key"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`

	// R2TempAPI mints R2 temporary credentials per bucket through Cloudflare's API.
	R2TempAPI *R2TempAPI `yaml:"r2_temp_api"`
	// R2TempLocal mints R2 temporary credentials per bucket locally, from the parent key.
	R2TempLocal *R2TempLocal `yaml:"r2_temp_local"`
	// File is a JSON or YAML credentials file, re-read whenever it changes.
	File string `yaml:"file"`
	// AWS takes credentials as the AWS SDK for Go does (its default chain, or a profile),
	// optionally assuming a role with them. `aws: {}` is the default chain.
	AWS *AWS `yaml:"aws"`

	// RefreshRatio is the fraction of a minted credential's lifetime after which it is
	// re-minted in the background. Default: `0.667`.
	RefreshRatio float64 `yaml:"refresh_ratio"`
	// SafetyMargin: credentials expiring sooner than this are never signed with; it must
	// outlast the longest request. Default: `1m`.
	SafetyMargin Duration `yaml:"safety_margin"`
	// MaxKeys caps the credentials a minted source (r2_temp_api, r2_temp_local) holds at
	// once, one per bucket and scope: a glob route mints for whatever bucket names clients
	// send. Beyond it the key used least recently is dropped. Default: `1024`.
	MaxKeys int `yaml:"max_keys"`
}

// Credential sources, as `signet check` names them.
const (
	SourceStatic      = "static"
	SourceR2TempAPI   = "r2_temp_api"
	SourceR2TempLocal = "r2_temp_local"
	SourceFile        = "file"
	SourceAWS         = "aws"
)

// Source names the configured credential source.
func (c *Credentials) Source() string {
	switch {
	case c.R2TempAPI != nil:
		return SourceR2TempAPI
	case c.R2TempLocal != nil:
		return SourceR2TempLocal
	case c.File != "":
		return SourceFile
	case c.AWS != nil:
		return SourceAWS
	default:
		return SourceStatic
	}
}

// BucketScoped reports whether the source mints one credential per bucket, which cannot
// sign a copy between two buckets.
func (c *Credentials) BucketScoped() bool {
	return c.R2TempAPI != nil || c.R2TempLocal != nil
}

// R2TempAPI configures minting through POST /accounts/{id}/r2/temp-access-credentials.
type R2TempAPI struct {
	// APIToken is a Cloudflare API token with R2 write permission (or APITokenFile).
	APIToken     Secret `yaml:"api_token"`
	APITokenFile string `yaml:"api_token_file"`
	// ParentAccessKeyID is the Access Key ID of the R2 API token whose permissions the
	// temporary credentials narrow.
	ParentAccessKeyID string `yaml:"parent_access_key_id"`
	// TTL is each credential's lifetime (1s to 7 days). Default: `1h`.
	TTL Duration `yaml:"ttl"`
	// APIBaseURL is the Cloudflare API. Default: `https://api.cloudflare.com/client/v4`.
	APIBaseURL string `yaml:"api_base_url"`
	// APIBudget is how many API calls signet makes with this API token per
	// APIBudgetWindow, shared by every account that uses the token. Cloudflare allows 1200
	// calls in 5 minutes per user, and going over blocks every call for 5 minutes; beyond
	// the budget, presigned URLs and first mints fail with 503 SlowDown and Retry-After.
	// Default: `1000`.
	APIBudget int `yaml:"api_budget"`
	// APIBudgetWindow is the window APIBudget counts in. Default: `5m`.
	APIBudgetWindow Duration `yaml:"api_budget_window"`
	// APIRefreshReserve is the part of APIBudget kept for refreshing credentials in use:
	// presigned URLs, first mints and retries get only the rest. Default: `250`.
	APIRefreshReserve int `yaml:"api_refresh_reserve"`
}

// R2TempLocal configures local minting: an HS256 JWT signed with the parent secret.
type R2TempLocal struct {
	ParentAccessKeyID         string `yaml:"parent_access_key_id"`
	ParentSecretAccessKey     Secret `yaml:"parent_secret_access_key"`
	ParentSecretAccessKeyFile string `yaml:"parent_secret_access_key_file"`
	// TTL is each credential's lifetime (1s to 7 days). Default: `15m`.
	TTL Duration `yaml:"ttl"`
}

// AWS configures credentials from the AWS SDK for Go: the default chain (environment,
// shared config and credentials files, web identity, container credentials, instance
// metadata) or a named profile, and then, with RoleARN, an STS AssumeRole with them. The
// SDK only fetches: signet's own cache holds and refreshes what it returns.
type AWS struct {
	// Profile is a named profile of the shared config and credentials files.
	// Default: the SDK's (AWS_PROFILE, else `default`).
	Profile string `yaml:"profile"`
	// RoleARN, when set, is a role assumed (STS AssumeRole) with the chain's credentials.
	RoleARN string `yaml:"role_arn"`
	// ExternalID is the external ID the role's trust policy asks for. Needs role_arn.
	ExternalID string `yaml:"external_id"`
	// SessionName names the role session (2 to 64 of A-Z a-z 0-9 + = , . @ - _). Needs
	// role_arn. Default: `signet-<hostname>`.
	SessionName string `yaml:"session_name"`
	// Duration is the assumed role's session lifetime, 15m to 12h (the role's maximum
	// session duration caps it). Needs role_arn. Default: `1h`.
	Duration Duration `yaml:"duration"`
	// STSEndpoint is the STS endpoint for every STS call: role_arn's AssumeRole, web
	// identity, roles of profiles. Default: the SDK's regional STS for the account's region.
	STSEndpoint string `yaml:"sts_endpoint"`
}

// DefaultAWSRoleDuration is an assumed role's session lifetime when duration is unset.
const DefaultAWSRoleDuration = time.Hour

// DefaultAWSSessionName is the role session name when session_name is unset:
// signet-<hostname>, with the characters STS refuses dropped, at most 64 long.
func DefaultAWSSessionName() string {
	host, _ := os.Hostname()
	name := "signet-" + strings.Map(func(r rune) rune {
		if isSessionNameChar(r) {
			return r
		}
		return -1
	}, host)
	if len(name) > 64 {
		name = name[:64]
	}
	return strings.TrimSuffix(name, "-") // "signet-" when the host name is unusable
}

func isSessionNameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+=,.@-_", r)
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
	// Admin asks bucket-scoped credential sources for admin-read-only/admin-read-write
	// instead of object-read-only/object-read-write (bucket settings, not just objects).
	// Default: `false`.
	Admin bool `yaml:"admin"`
	// Prefixes and Objects confine the route to key prefixes and exact keys: signet refuses
	// requests outside them, and minted credentials are narrowed the same way.
	Prefixes []string `yaml:"prefixes"`
	Objects  []string `yaml:"objects"`
	// Actions narrow locally minted credentials (r2_temp_local) to these S3 actions.
	Actions []string `yaml:"actions"`
}

// Permission is the R2 permission a route's minted credentials carry.
func (b *Bucket) Permission() string {
	kind := "object"
	if b.Admin {
		kind = "admin"
	}
	return kind + "-" + b.Access
}

// IsGlob reports whether the route's name is a pattern.
func (b *Bucket) IsGlob() bool { return isGlob(b.Name) }

// BucketHosts returns the host names that address the exactly-named routes in
// virtual-hosted style: bucket.suffix for each bucket whose name is not a glob and each of
// VirtualHostSuffixes, in config order and without repeats. Local TLS mode issues a
// certificate for each: the *.localhost certificate alone is refused by OpenSSL-based
// clients and never covers a bucket name with dots. Glob routes have no names to list.
func (c *Config) BucketHosts() []string {
	var hosts []string
	seen := map[string]bool{}
	for _, b := range c.Buckets {
		if b == nil || b.Name == "" || b.IsGlob() {
			continue
		}
		for _, s := range c.VirtualHostSuffixes {
			h := b.Name + "." + s
			if !seen[h] {
				seen[h] = true
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

// Client is an app's identity: local keys that are worthless outside signet, and what
// they may reach.
type Client struct {
	// Name identifies the client in logs and metrics.
	Name                string `yaml:"name"`
	AccessKeyID         string `yaml:"access_key_id"`
	SecretAccessKey     Secret `yaml:"secret_access_key"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// Buckets are the local bucket names (or globs) the client may use. Required.
	Buckets []string `yaml:"buckets"`
	// Access is read-write or read-only. Default: `read-write`.
	Access string `yaml:"access"`
	// Prefixes, when set, confine the client to these key prefixes.
	Prefixes []string `yaml:"prefixes"`
}

// TLS modes.
const (
	TLSOff   = "off"
	TLSACME  = "acme"
	TLSLocal = "local"
	TLSFiles = "files"
)

// TLS configures HTTPS on the S3 listener.
type TLS struct {
	// Mode is off, acme (certificates from an ACME CA through certmagic), local (signet's
	// own CA, for development) or files (a certificate and key on disk). Default: `off`.
	Mode string `yaml:"mode"`
	// Domains are the names to serve: for acme the names certificates are obtained for;
	// for local, names added to localhost, 127.0.0.1, ::1 and *.localhost.
	Domains []string `yaml:"domains"`
	// Email is the ACME account's contact address.
	Email string `yaml:"email"`
	// CA is the ACME directory URL. Default: Let's Encrypt's production directory.
	CA string `yaml:"ca"`
	// CARoot is a PEM file of roots to trust when talking to the ACME CA (a private CA).
	CARoot string `yaml:"ca_root"`
	// HTTPChallengeListen is where acme mode answers HTTP-01 challenges. Default: `:80`.
	HTTPChallengeListen string `yaml:"http_challenge_listen"`
	// Storage is where certificates, ACME accounts and the local CA are kept (files 0600).
	// Default: `<user data dir>/signet` ($XDG_DATA_HOME/signet or ~/.local/share/signet).
	Storage string `yaml:"storage"`
	// CertFile and KeyFile are PEM files for files mode, reloaded when they change.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Log configures the request log.
type Log struct {
	// Format is text or json. Default: `text`.
	Format string `yaml:"format"`
	// Level is debug, info, warn or error. Default: `info`.
	Level string `yaml:"level"`
}

// Defaults, the one place each is set: other packages take these values explicitly (or
// fall back to these constants for zero options).
const (
	// DefaultRefreshRatio is credentials.refresh_ratio: re-mint at 2/3 of the lifetime.
	DefaultRefreshRatio = 2.0 / 3
	// DefaultSafetyMargin is credentials.safety_margin.
	DefaultSafetyMargin = time.Minute
	// DefaultR2APITTL and DefaultR2LocalTTL are the ttl of r2_temp_api and r2_temp_local.
	DefaultR2APITTL   = time.Hour
	DefaultR2LocalTTL = 15 * time.Minute
	// MaxR2TTL is the longest lifetime R2 gives a temporary credential, by either way of
	// minting (the API's ttlSeconds maximum, 604800), and of a presigned URL.
	MaxR2TTL = 7 * 24 * time.Hour
	// DefaultMaxKeys is credentials.max_keys.
	DefaultMaxKeys = 1024
	// DefaultBodyIdleTimeout is body_idle_timeout.
	DefaultBodyIdleTimeout = Duration(time.Minute)
	// DefaultMaxConnectionsPerAddress is max_connections_per_address.
	DefaultMaxConnectionsPerAddress = 1024
	// DefaultAPIBudget, DefaultAPIBudgetWindow and DefaultAPIRefreshReserve are
	// r2_temp_api's api_budget, api_budget_window and api_refresh_reserve: under
	// Cloudflare's 1200 calls in 5 minutes, leaving room for the dashboard and other tools.
	DefaultAPIBudget         = 1000
	DefaultAPIBudgetWindow   = 5 * time.Minute
	DefaultAPIRefreshReserve = 250

	DefaultCloudflareAPI = "https://api.cloudflare.com/client/v4"
	DefaultListen        = "127.0.0.1:9000"
	DefaultAdminListen   = "127.0.0.1:9001"
	DefaultACMECA        = "https://acme-v02.api.letsencrypt.org/directory"
	DefaultR2Region      = "auto"
	DefaultS3Region      = "us-east-1"
	DefaultLogFormat     = "text"
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
		cr := &a.Credentials
		if cr.RefreshRatio == 0 {
			cr.RefreshRatio = DefaultRefreshRatio
		}
		if cr.SafetyMargin == 0 {
			cr.SafetyMargin = Duration(DefaultSafetyMargin)
		}
		if cr.MaxKeys == 0 {
			cr.MaxKeys = DefaultMaxKeys
		}
		if api := cr.R2TempAPI; api != nil {
			if api.TTL == 0 {
				api.TTL = Duration(DefaultR2APITTL)
			}
			if api.APIBaseURL == "" {
				api.APIBaseURL = DefaultCloudflareAPI
			}
			if api.APIBudget == 0 {
				api.APIBudget = DefaultAPIBudget
			}
			if api.APIBudgetWindow == 0 {
				api.APIBudgetWindow = Duration(DefaultAPIBudgetWindow)
			}
			if api.APIRefreshReserve == 0 {
				api.APIRefreshReserve = min(DefaultAPIRefreshReserve, api.APIBudget/4)
			}
		}
		if cr.R2TempLocal != nil && cr.R2TempLocal.TTL == 0 {
			cr.R2TempLocal.TTL = Duration(DefaultR2LocalTTL)
		}
		if r := cr.AWS; r != nil && r.RoleARN != "" {
			// Only with a role: without one, these settings mean nothing and Validate says so.
			if r.SessionName == "" {
				r.SessionName = DefaultAWSSessionName()
			}
			if r.Duration == 0 {
				r.Duration = Duration(DefaultAWSRoleDuration)
			}
		}
		if a.Timeouts.Dial == 0 {
			a.Timeouts.Dial = DefaultDialTimeout
		}
		if a.Timeouts.TLSHandshake == 0 {
			a.Timeouts.TLSHandshake = DefaultTLSHandshakeTimeout
		}
		if a.Timeouts.ResponseHeader == 0 {
			a.Timeouts.ResponseHeader = DefaultResponseHeaderTimeout
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
	for _, cl := range c.Clients {
		if cl != nil && cl.Access == "" {
			cl.Access = AccessReadWrite
		}
	}
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = 1024
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Duration(30 * time.Second)
	}
	if c.BodyIdleTimeout == 0 {
		c.BodyIdleTimeout = DefaultBodyIdleTimeout
	}
	if c.MaxConnectionsPerAddress == 0 {
		c.MaxConnectionsPerAddress = DefaultMaxConnectionsPerAddress
	}
	if c.TLS.Mode == "" {
		c.TLS.Mode = TLSOff
	}
	if c.TLS.Mode == TLSACME && c.TLS.HTTPChallengeListen == "" {
		c.TLS.HTTPChallengeListen = ":80"
	}
	if c.TLS.Mode == TLSACME && c.TLS.CA == "" {
		c.TLS.CA = DefaultACMECA
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

// UnmarshalYAML parses a Go duration string. A bad value is returned as a *yaml.TypeError:
// the decoder collects those and goes on, while any other error, such as UnmarshalText's,
// stops decoding and hides every problem after it (yaml.v3 decode.go, callUnmarshaler and
// scalar).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if v, err := time.ParseDuration(n.Value); err == nil {
			*d = Duration(v)
			return nil
		}
	}
	return nodeError(n, "%s is not a duration (write a number and a unit: \"30s\", \"5m\", \"1h\")", describeNode(n))
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
