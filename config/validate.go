package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

// errUnknownAccount marks a route naming an account the config does not have.
var errUnknownAccount = errors.New("unknown account")

// Validate checks the whole config and returns every problem found. It does no I/O.
// Call ApplyDefaults first.
func (c *Config) Validate() []*FieldError {
	var errs []*FieldError
	bad := func(err error, p ...any) { errs = append(errs, &FieldError{Path: p, Err: err}) }

	if err := CheckListen(c.Listen); err != nil {
		bad(err, "listen")
	} else if err := c.CheckExposure(c.Listen); err != nil {
		bad(err, "listen")
	}
	if err := CheckAdminListen(c.AdminListen); err != nil {
		bad(err, "admin_listen")
	}
	if c.ShutdownTimeout < 0 {
		bad(errors.New("must not be negative"), "shutdown_timeout")
	}
	if c.MaxConnectionsPerAddress < 0 {
		bad(errors.New("must not be negative"), "max_connections_per_address")
	}
	if c.BodyIdleTimeout < 0 {
		bad(errors.New("must not be negative"), "body_idle_timeout")
	}
	errs = append(errs, c.TLS.validate()...)
	for i, o := range c.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			bad(err, "allowed_origins", i)
		}
	}
	if c.MaxConcurrentRequests < 0 {
		bad(errors.New("must not be negative"), "max_concurrent_requests")
	}
	keys := map[string]int{}
	for i, cl := range c.Clients {
		at := func(p ...any) []any { return append([]any{"clients", i}, p...) }
		if cl == nil {
			bad(errors.New("the client is empty"), at()...)
			continue
		}
		if cl.Name == "" {
			bad(errors.New("name is required"), at()...)
		}
		if cl.AccessKeyID == "" {
			bad(errors.New("access_key_id is required"), at()...)
		} else if j, dup := keys[cl.AccessKeyID]; dup {
			bad(fmt.Errorf("access key id is already used by clients[%d]", j), at("access_key_id")...)
		} else {
			keys[cl.AccessKeyID] = i
		}
		if (cl.SecretAccessKey == "") == (cl.SecretAccessKeyFile == "") {
			bad(errors.New("give one of secret_access_key and secret_access_key_file"), at()...)
		}
		if len(cl.Buckets) == 0 {
			bad(errors.New("buckets is required: the bucket names (or globs) this client may use"), at()...)
		}
		for j, b := range cl.Buckets {
			if _, err := path.Match(b, ""); err != nil {
				bad(fmt.Errorf("%q is not a valid glob: %w", b, err), at("buckets", j)...)
			}
		}
		if cl.Access != AccessReadWrite && cl.Access != AccessReadOnly {
			bad(fmt.Errorf("%q is not read-write or read-only%s", cl.Access, didYouMean(cl.Access, []string{AccessReadWrite, AccessReadOnly})), at("access")...)
		}
	}
	for i, s := range c.VirtualHostSuffixes {
		if !validHostname(s) {
			bad(fmt.Errorf("%q is not a lowercase host name", s), "virtual_host_suffixes", i)
		}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad(fmt.Errorf("%q is not text or json%s", c.Log.Format, didYouMean(c.Log.Format, []string{"text", "json"})), "log", "format")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad(fmt.Errorf("%q is not debug, info, warn or error%s", c.Log.Level, didYouMean(c.Log.Level, []string{"debug", "info", "warn", "error"})), "log", "level")
	}

	if len(c.Accounts) == 0 {
		bad(errors.New("at least one account is required"), "accounts")
	}
	names := make([]string, 0, len(c.Accounts))
	for name := range c.Accounts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		a := c.Accounts[name]
		at := func(p ...any) []any { return append([]any{"accounts", name}, p...) }
		if a == nil {
			bad(errors.New("the account is empty"), at()...)
			continue
		}
		if a.R2AccountID == "" && a.Endpoint == "" {
			bad(errors.New("set r2_account_id (R2) or endpoint (any S3-compatible server)"), at()...)
		}
		if a.R2AccountID != "" && !isHex32(a.R2AccountID) {
			bad(fmt.Errorf("%q is not a 32-hex-digit Cloudflare account id", a.R2AccountID), at("r2_account_id")...)
		}
		if a.Endpoint != "" {
			if err := checkEndpoint(a.Endpoint); err != nil {
				bad(err, at("endpoint")...)
			}
		}
		for _, t := range []struct {
			key string
			d   Duration
		}{{"dial", a.Timeouts.Dial}, {"tls_handshake", a.Timeouts.TLSHandshake}, {"response_header", a.Timeouts.ResponseHeader}} {
			if t.d < 0 {
				bad(errors.New("must not be negative"), at("timeouts", t.key)...)
			}
		}
		for _, fe := range a.Credentials.validate() {
			bad(fe.Err, append(at("credentials"), fe.Path...)...)
		}
		if a.Credentials.BucketScoped() && !a.IsR2() {
			bad(fmt.Errorf("%s needs an R2 account (r2_account_id)", a.Credentials.Source()), at("credentials", a.Credentials.Source())...)
		}
	}

	if len(c.Buckets) == 0 {
		bad(errors.New("at least one bucket route is required"), "buckets")
	}
	seen := map[string]int{}
	for i, b := range c.Buckets {
		at := func(p ...any) []any { return append([]any{"buckets", i}, p...) }
		if b == nil {
			bad(errors.New("the route is empty"), at()...)
			continue
		}
		switch {
		case b.Name == "":
			bad(errors.New("name is required"), at()...)
		case b.IsGlob():
			if _, err := path.Match(b.Name, ""); err != nil {
				bad(fmt.Errorf("%q is not a valid glob: %w", b.Name, err), at("name")...)
			}
			if b.UpstreamBucket != "" {
				bad(errors.New("a glob route cannot rename its buckets"), at("upstream_bucket")...)
			}
		default:
			if err := CheckBucketName(b.Name); err != nil {
				bad(err, at("name")...)
			}
			if j, dup := seen[b.Name]; dup {
				bad(fmt.Errorf("bucket %q is already routed by buckets[%d]", b.Name, j), at("name")...)
			}
			seen[b.Name] = i
		}
		a, ok := c.Accounts[b.Account]
		switch {
		case b.Account == "":
			bad(errors.New("account is required"), at()...)
		case !ok:
			bad(fmt.Errorf("%w %q%s (known: %s)", errUnknownAccount, b.Account, didYouMean(b.Account, names), strings.Join(names, ", ")), at("account")...)
		}
		if !slices.Contains(jurisdictions, b.Jurisdiction) {
			bad(fmt.Errorf("unknown jurisdiction %q%s (use %s)", b.Jurisdiction, didYouMean(b.Jurisdiction, jurisdictions), strings.Join(jurisdictions, ", ")), at("jurisdiction")...)
		} else if ok && a != nil && !a.IsR2() && b.Jurisdiction != "default" {
			bad(fmt.Errorf("jurisdiction %q needs an R2 account; account %q has none", b.Jurisdiction, b.Account), at("jurisdiction")...)
		}
		if b.UpstreamBucket != "" {
			if err := CheckBucketName(b.UpstreamBucket); err != nil {
				bad(err, at("upstream_bucket")...)
			}
		}
		if b.Access != AccessReadWrite && b.Access != AccessReadOnly {
			bad(fmt.Errorf("%q is not read-write or read-only%s", b.Access, didYouMean(b.Access, []string{AccessReadWrite, AccessReadOnly})), at("access")...)
		}
		if len(b.Actions) > 0 && (!ok || a == nil || a.Credentials.R2TempLocal == nil) {
			bad(errors.New("actions narrow locally minted credentials: the account needs r2_temp_local"), at("actions")...)
		}
		for j, act := range b.Actions {
			if !slices.Contains(R2Actions(), act) {
				bad(fmt.Errorf("unknown action %q%s (use %s)", act, didYouMean(act, R2Actions()), strings.Join(R2Actions(), ", ")), at("actions", j)...)
			}
		}
	}
	return errs
}

func (c *Credentials) validate() []*FieldError {
	var errs []*FieldError
	bad := func(err error, p ...any) { errs = append(errs, &FieldError{Path: p, Err: err}) }
	static := c.AccessKeyID != "" || c.AccessKeyIDFile != "" || c.SecretAccessKey != "" || c.SecretAccessKeyFile != ""
	n := 0
	for _, set := range []bool{static, c.R2TempAPI != nil, c.R2TempLocal != nil, c.File != "", c.AWS != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		bad(errors.New("give exactly one credential source: static keys, r2_temp_api, r2_temp_local, file or aws"))
		return errs
	}
	if c.RefreshRatio <= 0 || c.RefreshRatio >= 1 {
		bad(fmt.Errorf("%v must be between 0 and 1", c.RefreshRatio), "refresh_ratio")
	}
	if c.SafetyMargin < 0 {
		bad(errors.New("must not be negative"), "safety_margin")
	}
	if c.MaxKeys < 1 {
		bad(fmt.Errorf("%d must be at least 1", c.MaxKeys), "max_keys")
	}
	checkLifetime := func(d Duration, lo, hi time.Duration, span string, p ...any) {
		ttl := time.Duration(d)
		if ttl < lo || ttl > hi {
			bad(fmt.Errorf("%s must be between %s", ttl, span), p...)
			return
		}
		// A credential must still be usable when its refresh is due, or every request
		// would wait for a mint (or, with ttl <= safety_margin, fail forever).
		if c.RefreshRatio > 0 && c.RefreshRatio < 1 && c.SafetyMargin >= 0 {
			if least := time.Duration(float64(c.SafetyMargin) / (1 - c.RefreshRatio)); ttl <= least {
				bad(fmt.Errorf("%s must be longer than %s: credentials are refreshed at refresh_ratio (%v) of their lifetime and never signed with in their last safety_margin (%s); raise ttl or lower safety_margin",
					ttl, least.Round(time.Second), c.RefreshRatio, time.Duration(c.SafetyMargin)), p...)
			}
		}
	}
	checkTTL := func(d Duration, p ...any) {
		checkLifetime(d, time.Second, MaxR2TTL, "1s and "+MaxR2TTL.String()+" (7 days)", p...)
	}
	switch {
	case c.AWS != nil:
		a := c.AWS
		if a.RoleARN == "" {
			for _, f := range []struct {
				name string
				set  bool
			}{{"external_id", a.ExternalID != ""}, {"session_name", a.SessionName != ""}, {"duration", a.Duration != 0}} {
				if f.set {
					bad(errors.New("needs role_arn: it configures the role signet assumes"), "aws", f.name)
				}
			}
		} else {
			if err := checkRoleARN(a.RoleARN); err != nil {
				bad(err, "aws", "role_arn")
			}
			if err := checkSessionName(a.SessionName); err != nil {
				bad(err, "aws", "session_name")
			}
			// STS's DurationSeconds: 900 to 43200.
			checkLifetime(a.Duration, 15*time.Minute, 12*time.Hour, "15m and 12h (what STS accepts)", "aws", "duration")
		}
		if a.STSEndpoint != "" {
			if err := checkEndpoint(a.STSEndpoint); err != nil {
				bad(err, "aws", "sts_endpoint")
			}
		}
		return errs
	case c.R2TempAPI != nil:
		a := c.R2TempAPI
		if (a.APIToken == "") == (a.APITokenFile == "") {
			bad(errors.New("give one of api_token and api_token_file"), "r2_temp_api")
		}
		if a.ParentAccessKeyID == "" {
			bad(errors.New("parent_access_key_id is required"), "r2_temp_api")
		}
		checkTTL(a.TTL, "r2_temp_api", "ttl")
		if a.APIBudget < 1 {
			bad(fmt.Errorf("%d must be at least 1", a.APIBudget), "r2_temp_api", "api_budget")
		}
		if a.APIBudgetWindow <= 0 {
			bad(errors.New("must be positive"), "r2_temp_api", "api_budget_window")
		}
		if a.APIRefreshReserve < 0 || a.APIRefreshReserve >= a.APIBudget {
			bad(fmt.Errorf("%d must be at least 0 and less than api_budget (%d): the rest is what presigned URLs and first mints may use", a.APIRefreshReserve, a.APIBudget), "r2_temp_api", "api_refresh_reserve")
		}
		if u, err := url.Parse(a.APIBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(fmt.Errorf("%q is not an http(s) URL", redactURL(a.APIBaseURL)), "r2_temp_api", "api_base_url")
		}
		return errs
	case c.R2TempLocal != nil:
		l := c.R2TempLocal
		if l.ParentAccessKeyID == "" {
			bad(errors.New("parent_access_key_id is required"), "r2_temp_local")
		}
		if (l.ParentSecretAccessKey == "") == (l.ParentSecretAccessKeyFile == "") {
			bad(errors.New("give one of parent_secret_access_key and parent_secret_access_key_file"), "r2_temp_local")
		}
		checkTTL(l.TTL, "r2_temp_local", "ttl")
		return errs
	case c.File != "":
		return errs
	}
	switch {
	case c.AccessKeyID == "" && c.AccessKeyIDFile == "":
		bad(errors.New("access_key_id or access_key_id_file is required"))
	case c.AccessKeyID != "" && c.AccessKeyIDFile != "":
		bad(errors.New("set only one of access_key_id and access_key_id_file"), "access_key_id_file")
	}
	switch {
	case c.SecretAccessKey == "" && c.SecretAccessKeyFile == "":
		bad(errors.New("secret_access_key or secret_access_key_file is required"))
	case c.SecretAccessKey != "" && c.SecretAccessKeyFile != "":
		bad(errors.New("set only one of secret_access_key and secret_access_key_file"), "secret_access_key_file")
	}
	return errs
}

// R2Actions returns, in a new slice, the S3 actions a locally minted R2 credential can be
// narrowed to (the JWT's actions claim), in Cloudflare's documented order.
func R2Actions() []string {
	return []string{
		"HeadObject", "GetObject", "GetBucketLocation", "ListObjectsV1", "ListObjectsV2",
		"ListMultipartUploads", "ListParts", "PutObject", "DeleteObject", "DeleteObjects",
		"CopyObject", "CreateMultipartUpload", "UploadPart", "UploadPartCopy",
		"AbortMultipartUpload", "CompleteMultipartUpload",
	}
}

// checkRoleARN accepts an IAM role ARN in any partition: arn:<partition>:iam::<12
// digits>:role/<path and name>.
func checkRoleARN(s string) error {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "iam" || parts[3] != "" ||
		len(parts[4]) != 12 || strings.Trim(parts[4], "0123456789") != "" ||
		!strings.HasPrefix(parts[5], "role/") || len(parts[5]) == len("role/") {
		return fmt.Errorf("%q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", s)
	}
	return nil
}

// checkSessionName applies STS's RoleSessionName rule: 2 to 64 of [\w+=,.@-].
func checkSessionName(s string) error {
	if len(s) < 2 || len(s) > 64 || strings.IndexFunc(s, func(r rune) bool { return !isSessionNameChar(r) }) >= 0 {
		return fmt.Errorf("%q must be 2 to 64 characters of A-Z a-z 0-9 + = , . @ - _", s)
	}
	return nil
}

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", redactURL(s))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: the scheme must be http or https", redactURL(s))
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: give only scheme://host[:port], with no path, query or user", redactURL(s))
	}
	return nil
}

// redactURL hides the password of a URL's userinfo (https://user:pass@host), so that an
// error about the URL cannot print it. A URL that does not parse loses everything between
// "//" and the last "@" of its authority.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	_, rest, ok := strings.Cut(s, "//")
	if !ok {
		return s
	}
	authority, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return s
	}
	return s[:len(s)-len(rest)] + "xxxxx" + rest[at:]
}

func isHex32(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

func isGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

func validHostname(s string) bool {
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// CheckBucketName applies S3's bucket naming rules: 3 to 63 characters of lowercase letters,
// digits, dots and hyphens, starting and ending with a letter or digit, no "..", and not
// shaped like an IP address.
func CheckBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters long", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return fmt.Errorf("bucket name %q may hold only lowercase letters, digits, '.' and '-'", name)
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) {
		return fmt.Errorf("bucket name %q must start and end with a letter or digit", name)
	}
	if strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return fmt.Errorf("bucket name %q must not contain '..', '.-' or '-.'", name)
	}
	// Only digits and dots can spell an address here (':' was refused above); asking
	// netip first would allocate its error for every other name, on every request.
	if strings.Trim(name, "0123456789.") == "" {
		if _, err := netip.ParseAddr(name); err == nil {
			return fmt.Errorf("bucket name %q must not be an IP address", name)
		}
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func (t *TLS) validate() []*FieldError {
	var errs []*FieldError
	bad := func(err error, p ...any) {
		errs = append(errs, &FieldError{Path: append([]any{"tls"}, p...), Err: err})
	}
	switch t.Mode {
	case TLSOff:
	case TLSACME:
		if len(t.Domains) == 0 {
			bad(errors.New("acme needs at least one domain"), "domains")
		}
		if u, err := url.Parse(t.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			bad(fmt.Errorf("%q is not an https ACME directory URL", t.CA), "ca")
		}
		if _, _, err := net.SplitHostPort(t.HTTPChallengeListen); err != nil {
			bad(fmt.Errorf("%q is not host:port", t.HTTPChallengeListen), "http_challenge_listen")
		}
	case TLSLocal:
	case TLSFiles:
		if t.CertFile == "" || t.KeyFile == "" {
			bad(errors.New("files mode needs cert_file and key_file"))
		}
	default:
		bad(fmt.Errorf("%q is not off, acme, local or files%s", t.Mode, didYouMean(t.Mode, []string{TLSOff, TLSACME, TLSLocal, TLSFiles})), "mode")
	}
	for i, d := range t.Domains {
		if !validHostname(strings.TrimPrefix(d, "*.")) {
			bad(fmt.Errorf("%q is not a host name", d), "domains", i)
		}
	}
	return errs
}

// CheckAdminListen accepts host:port and off.
func CheckAdminListen(addr string) error {
	if addr == "off" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not host:port or off", addr)
	}
	return nil
}

// CheckListen accepts host:port and unix:///absolute/path.
func CheckListen(addr string) error {
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("%q: a unix socket needs an absolute path, unix:///run/signet.sock", addr)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not host:port or unix:///path", addr)
	}
	return nil
}

// CheckExposure refuses to serve addr beyond loopback when no client identities guard the
// routes, unless allow_anonymous_network says that is intended.
func (c *Config) CheckExposure(addr string) error {
	if len(c.Clients) > 0 || c.AllowAnonymousNetwork || strings.HasPrefix(addr, "unix://") {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil // CheckListen reports it
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	allow := "set allow_anonymous_network: true"
	if c.ZeroConfig {
		allow = "set " + EnvAllowAnonymousNetwork + "=true"
	}
	return fmt.Errorf("%q is reachable beyond this machine, and with no clients configured anyone who can connect "+
		"may use every route with signet's credentials: configure clients, listen on 127.0.0.1 or a unix socket, "+
		"or %s", addr, allow)
}

// checkOrigin accepts a web origin as browsers send it in Origin: scheme://host[:port],
// lowercase, with no path, and never "*" (any website is what allowed_origins keeps out).
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	switch {
	case o == "*" || o == "null":
		return fmt.Errorf("%q would let any website in; list each origin", o)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil:
		return fmt.Errorf("%q is not an origin: write scheme://host[:port], e.g. https://app.example.com", o)
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q has a path: an origin is scheme://host[:port] only", o)
	case o != strings.ToLower(o):
		return fmt.Errorf("%q: write it lowercase, as browsers send it", o)
	}
	return nil
}
