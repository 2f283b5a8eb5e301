package creds

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/signet-proxy/signet/config"
)

// MaxR2TTL is the longest lifetime R2 gives a temporary credential, by either way of
// minting (the API's ttlSeconds maximum, 604800). The config owns the value.
const MaxR2TTL = config.MaxR2TTL

// checkTTL accepts what R2 does: whole seconds from 1s to MaxR2TTL.
func checkTTL(ttl time.Duration) error {
	if ttl < time.Second || ttl > MaxR2TTL {
		return fmt.Errorf("ttl %s: must be between 1s and %s", ttl, MaxR2TTL)
	}
	return nil
}

// DefaultCloudflareAPI is the Cloudflare v4 API base URL. The config owns the value.
const DefaultCloudflareAPI = config.DefaultCloudflareAPI

// maxAPIResponse bounds what is read of an API response: the envelope is a few hundred bytes.
const maxAPIResponse = 1 << 20

// R2APIOptions tunes an [R2API]. Zero values take the defaults.
type R2APIOptions struct {
	// BaseURL is the Cloudflare API base, without a trailing slash.
	// Default: `https://api.cloudflare.com/client/v4`.
	BaseURL string
	// TTL is the lifetime asked for each credential, in whole seconds, at most [MaxR2TTL].
	// Default: `1h`.
	TTL time.Duration
	// HTTPClient sends the API calls. Its Timeout should be zero: Timeout below bounds each
	// call. Default: a client on its own http.Transport with dial, TLS-handshake and
	// response-header timeouts (never http.DefaultClient).
	HTTPClient *http.Client
	// Timeout bounds one call, from dial to the end of the response body. Default: `10s`.
	Timeout time.Duration
	// Now is the clock; a credential expires TTL after the Now taken before its request
	// (the response carries no expiry). Default: time.Now.
	Now func() time.Time
}

// R2API mints R2 temporary credentials through Cloudflare's API
// (POST /accounts/{account_id}/r2/temp-access-credentials). It is a [Minter]: wrap it in a
// [Cache]. The API token never appears in its errors, its String or its log value.
type R2API struct {
	accountID   string
	token       string
	parentKeyID string
	endpoint    string // full URL of the temp-access-credentials call
	opts        R2APIOptions
	client      *http.Client
}

var _ Minter = (*R2API)(nil)

// NewR2API returns an R2API minting for accountID with the API token apiToken (which needs
// R2 write permission on the account) and the parent key parentAccessKeyID, the Access Key
// ID of an R2 API token whose permissions the credentials narrow.
func NewR2API(accountID, apiToken, parentAccessKeyID string, optFns ...func(*R2APIOptions)) (*R2API, error) {
	var o R2APIOptions
	for _, fn := range optFns {
		fn(&o)
	}
	o.BaseURL = strings.TrimSuffix(cmp.Or(o.BaseURL, DefaultCloudflareAPI), "/")
	o.TTL = cmp.Or(o.TTL, config.DefaultR2APITTL)
	o.Timeout = cmp.Or(o.Timeout, 10*time.Second)
	if o.Now == nil {
		o.Now = time.Now
	}
	var errs []error
	if accountID == "" {
		errs = append(errs, errors.New("account id is empty"))
	}
	if apiToken == "" {
		errs = append(errs, errors.New("api token is empty"))
	}
	if parentAccessKeyID == "" {
		errs = append(errs, errors.New("parent access key id is empty"))
	}
	if err := checkTTL(o.TTL); err != nil {
		errs = append(errs, err)
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must not be negative", o.Timeout))
	}
	base, err := url.Parse(o.BaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		errs = append(errs, fmt.Errorf("base url %q: must be an absolute http(s) url", o.BaseURL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("r2 api minter: %w", err)
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Transport: newAPITransport()}
	}
	return &R2API{
		accountID:   accountID,
		token:       apiToken,
		parentKeyID: parentAccessKeyID,
		endpoint:    o.BaseURL + "/accounts/" + url.PathEscape(accountID) + "/r2/temp-access-credentials",
		opts:        o,
		client:      client,
	}, nil
}

// newAPITransport is the dedicated transport for Cloudflare API calls.
func newAPITransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          8,
		MaxIdleConnsPerHost:   4,
	}
}

// CloseIdleConnections closes the idle connections of the HTTP client. Call it when the
// R2API is no longer used.
func (p *R2API) CloseIdleConnections() { p.client.CloseIdleConnections() }

// String describes p without its token.
func (p *R2API) String() string {
	return fmt.Sprintf("r2 api minter (account %s, parent key %s)", p.accountID, p.parentKeyID)
}

// GoString is String, so that %#v cannot print the token either.
func (p *R2API) GoString() string { return p.String() }

// LogValue logs p without its token.
func (p *R2API) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("source", "r2api"),
		slog.String("account", p.accountID),
		slog.String("parent_key", p.parentKeyID),
	)
}

// tempCredentialsRequest is the body of POST .../r2/temp-access-credentials.
type tempCredentialsRequest struct {
	Bucket            string   `json:"bucket"`
	ParentAccessKeyID string   `json:"parentAccessKeyId"`
	Permission        string   `json:"permission"`
	TTLSeconds        int64    `json:"ttlSeconds"`
	Prefixes          []string `json:"prefixes,omitempty"`
	Objects           []string `json:"objects,omitempty"`
}

// apiEnvelope is Cloudflare's v4 response envelope around temporary credentials.
type apiEnvelope struct {
	Success *bool        `json:"success"`
	Errors  []APIMessage `json:"errors"`
	Result  *struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
		SessionToken    string `json:"sessionToken"`
	} `json:"result"`
}

// APIMessage is one entry of a Cloudflare v4 envelope's errors.
type APIMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// APIError is a Cloudflare API call that answered with a failure: an HTTP status outside
// 2xx, or "success": false. It never holds the API token.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Errors are the envelope's errors, when the body was an envelope.
	Errors []APIMessage
	// RetryAfter is the server's Retry-After (seconds or HTTP date) as a duration from the
	// response; zero when absent. Cloudflare sends it with 429 once the rate limit is hit,
	// and blocks further calls for five minutes.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cloudflare api answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	for i, m := range e.Errors {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s[%d] %s", sep, m.Code, m.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Temporary reports whether a later call may succeed unchanged: rate limiting or a server
// error.
func (e *APIError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// Mint asks the API for a credential on key.Bucket with key.Permission, narrowed to
// key.Prefixes and key.Objects. The API cannot narrow by action, so a key with Actions is an
// error (use [R2Local]). key.Jurisdiction and key.Host are not sent: the call has no
// jurisdiction parameter.
func (p *R2API) Mint(ctx context.Context, key Key) (aws.Credentials, error) {
	return p.MintTTL(ctx, key, p.opts.TTL)
}

// MintTTL is Mint with a lifetime of its own (whole seconds, at most [MaxR2TTL]).
func (p *R2API) MintTTL(ctx context.Context, key Key, ttl time.Duration) (aws.Credentials, error) {
	if err := checkTTL(ttl); err != nil {
		return aws.Credentials{}, fmt.Errorf("mint r2 credentials for %s: %w", key.Bucket, err)
	}
	cr, err := p.mint(ctx, key, ttl)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("mint r2 credentials for %s: %w", key.Bucket, err)
	}
	return cr, nil
}

func (p *R2API) mint(ctx context.Context, key Key, ttl time.Duration) (aws.Credentials, error) {
	if key.Bucket == "" {
		return aws.Credentials{}, errors.New("bucket is empty")
	}
	if !ValidPermission(key.Permission) {
		return aws.Credentials{}, fmt.Errorf("permission %q: must be one of %s, %s, %s, %s", key.Permission,
			PermObjectReadOnly, PermObjectReadWrite, PermAdminReadOnly, PermAdminReadWrite)
	}
	if key.Actions != "" {
		return aws.Credentials{}, errors.New("the temp-access-credentials api cannot restrict actions; mint locally instead")
	}
	body, err := json.Marshal(tempCredentialsRequest{
		Bucket:            key.Bucket,
		ParentAccessKeyID: p.parentKeyID,
		Permission:        key.Permission,
		TTLSeconds:        int64(ttl / time.Second),
		Prefixes:          splitList(key.Prefixes),
		Objects:           splitList(key.Objects),
	})
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("encode request: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	start := p.opts.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		// *url.Error names the method and URL (account id, no token) and the cause.
		return aws.Credentials{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse+1))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("read response (status %d): %w", resp.StatusCode, err)
	}
	if len(raw) > maxAPIResponse {
		return aws.Credentials{}, fmt.Errorf("response (status %d) exceeds %d bytes", resp.StatusCode, maxAPIResponse)
	}

	var env apiEnvelope
	decodeErr := json.Unmarshal(raw, &env)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := &APIError{StatusCode: resp.StatusCode}
		if decodeErr == nil {
			apiErr.Errors = p.redactMessages(env.Errors)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			apiErr.RetryAfter = parseRetryAfter(ra, p.opts.Now())
		}
		return aws.Credentials{}, apiErr
	}
	if decodeErr != nil {
		return aws.Credentials{}, fmt.Errorf("decode response (status %d, %d bytes): %w",
			resp.StatusCode, len(raw), decodeErr)
	}
	if env.Success == nil {
		return aws.Credentials{}, fmt.Errorf("response (status %d) is not a cloudflare envelope: no success field", resp.StatusCode)
	}
	if !*env.Success {
		return aws.Credentials{}, &APIError{StatusCode: resp.StatusCode, Errors: p.redactMessages(env.Errors)}
	}
	var missing []string
	switch {
	case env.Result == nil:
		missing = append(missing, "result")
	default:
		if env.Result.AccessKeyID == "" {
			missing = append(missing, "result.accessKeyId")
		}
		if env.Result.SecretAccessKey == "" {
			missing = append(missing, "result.secretAccessKey")
		}
		if env.Result.SessionToken == "" {
			missing = append(missing, "result.sessionToken")
		}
	}
	if len(missing) > 0 {
		return aws.Credentials{}, fmt.Errorf("response lacks %s", strings.Join(missing, ", "))
	}
	return aws.Credentials{
		AccessKeyID:     env.Result.AccessKeyID,
		SecretAccessKey: env.Result.SecretAccessKey,
		SessionToken:    env.Result.SessionToken,
		Source:          "r2api",
		CanExpire:       true,
		// The response carries no expiry: count from before the request, so the credential
		// is never believed to live longer than it does.
		Expires: start.Add(ttl.Truncate(time.Second)),
	}, nil
}

// redactMessages removes the API token from server-supplied messages, should a server ever
// echo it, before they reach an error string or a log.
func (p *R2API) redactMessages(ms []APIMessage) []APIMessage {
	out := make([]APIMessage, len(ms))
	for i, m := range ms {
		out[i] = APIMessage{Code: m.Code, Message: strings.ReplaceAll(m.Message, p.token, "REDACTED")}
	}
	return out
}

// parseRetryAfter reads a Retry-After value, delay-seconds or an HTTP date (RFC 9110
// §10.2.3), as a duration from now; zero when unreadable or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(MaxR2TTL/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// ValidPermission reports whether p is one of the four R2 permissions.
func ValidPermission(p string) bool {
	switch p {
	case PermObjectReadOnly, PermObjectReadWrite, PermAdminReadOnly, PermAdminReadWrite:
		return true
	}
	return false
}

// splitList splits a Key list field (newline-joined) into its items, nil when empty.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for item := range strings.SplitSeq(s, "\n") {
		if item != "" {
			out = append(out, item)
		}
	}
	return out
}
