package creds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/signet-proxy/signet/internal/testenv"
)

const testParentForAPI = "parent-access-key-id-0001"

func newTestR2API(t *testing.T, fake *testenv.FakeCloudflare, token string, optFns ...func(*R2APIOptions)) *R2API {
	t.Helper()
	fns := append([]func(*R2APIOptions){func(o *R2APIOptions) { o.BaseURL = fake.BaseURL }}, optFns...)
	p, err := NewR2API(fake.AccountID(), token, testParentForAPI, fns...)
	if err != nil {
		t.Fatalf("NewR2API: %v", err)
	}
	t.Cleanup(p.CloseIdleConnections)
	return p
}

// s3Client signs with cr exactly as given (no session token when cr has none).
func s3Client(endpoint string, cr aws.Credentials) *s3.Client {
	return s3.New(s3.Options{
		Region:           testenv.MinIORegion,
		BaseEndpoint:     aws.String(endpoint),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken),
		RetryMaxAttempts: 1,
	})
}

// httpStatus is the HTTP status of an SDK error, 0 when it has none.
func httpStatus(err error) int {
	var hs interface{ HTTPStatusCode() int }
	if errors.As(err, &hs) {
		return hs.HTTPStatusCode()
	}
	return 0
}

// s3Code is the S3 error code of an SDK error, "" when it has none.
func s3Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func putObject(ctx context.Context, c *s3.Client, bucket, key, body string) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body),
	})
	return err
}

func getObject(ctx context.Context, c *s3.Client, bucket, key string) (string, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

// TestR2APIMintsWorkingCredentials runs the whole way: R2API asks the fake Cloudflare API,
// which gets real temporary credentials from MinIO's STS, scoped like R2's; MinIO then
// accepts requests signed with them and refuses them without their session token.
func TestR2APIMintsWorkingCredentials(t *testing.T) {
	minio := testenv.StartMinIO(t)
	fake := testenv.NewFakeCloudflare(t, testenv.FakeCloudflareConfig{
		ParentAccessKeyID: testParentForAPI,
		Mint:              minio.R2Like,
	})
	p := newTestR2API(t, fake, fake.Token(), func(o *R2APIOptions) { o.TTL = 20 * time.Minute })
	ctx := t.Context()
	const bucket = "signet-e2e"

	before := time.Now()
	admin, err := p.Mint(ctx, Key{Bucket: bucket, Permission: PermAdminReadWrite})
	after := time.Now()
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	if admin.SessionToken == "" || !admin.CanExpire ||
		admin.Expires.Before(before.Add(20*time.Minute)) || admin.Expires.After(after.Add(20*time.Minute)) {
		t.Errorf("credentials: token set %v, CanExpire %v, Expires %v; want expiry = request time + 20m",
			admin.SessionToken != "", admin.CanExpire, admin.Expires)
	}
	issued := fake.Issued()
	if len(issued) != 1 {
		t.Fatalf("fake issued %d credentials, want 1", len(issued))
	}
	if r := issued[0].Request; r.Bucket != bucket || r.Permission != PermAdminReadWrite ||
		r.TTLSeconds != 1200 || r.ParentAccessKeyID != testParentForAPI || r.Prefixes != nil || r.Objects != nil {
		t.Errorf("request body = %+v", r)
	}

	c := s3Client(minio.Endpoint, admin)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket with minted credentials: %v", err)
	}
	if err := putObject(ctx, c, bucket, "uploads/hello.txt", "hello r2"); err != nil {
		t.Fatalf("PutObject with minted credentials: %v", err)
	}
	if got, err := getObject(ctx, c, bucket, "uploads/hello.txt"); err != nil || got != "hello r2" {
		t.Fatalf("GetObject with minted credentials = %q, %v", got, err)
	}

	// The session token is what makes them work, and they are bound to their bucket.
	altered := []byte(admin.SessionToken)
	altered[len(altered)/2] ^= 1
	refusals := []struct {
		name string
		cr   aws.Credentials
		op   func(*s3.Client) error
		code string
	}{
		{name: "token dropped", cr: aws.Credentials{AccessKeyID: admin.AccessKeyID, SecretAccessKey: admin.SecretAccessKey},
			op: func(c *s3.Client) error { _, err := getObject(ctx, c, bucket, "uploads/hello.txt"); return err }, code: "InvalidTokenId"},
		{name: "token altered", cr: aws.Credentials{AccessKeyID: admin.AccessKeyID, SecretAccessKey: admin.SecretAccessKey, SessionToken: string(altered)},
			op: func(c *s3.Client) error { _, err := getObject(ctx, c, bucket, "uploads/hello.txt"); return err }, code: "InvalidTokenId"},
		{name: "another bucket", cr: admin, code: "AccessDenied",
			op: func(c *s3.Client) error {
				_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("signet-other")})
				return err
			}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(s3Client(minio.Endpoint, tt.cr))
			if httpStatus(err) != http.StatusForbidden || s3Code(err) != tt.code {
				t.Errorf("err = %v, want a 403 %s", err, tt.code)
			}
		})
	}

	// Permission and prefixes reach the API and narrow what the credentials may do.
	scoped := []struct {
		name    string
		key     Key
		wantReq testenv.TempCredentialsRequest
		allowed func(*s3.Client) error
		denied  func(*s3.Client) error
	}{
		{
			name:    "object-read-only",
			key:     Key{Bucket: bucket, Permission: PermObjectReadOnly},
			wantReq: testenv.TempCredentialsRequest{Permission: PermObjectReadOnly},
			allowed: func(c *s3.Client) error { _, err := getObject(ctx, c, bucket, "uploads/hello.txt"); return err },
			denied:  func(c *s3.Client) error { return putObject(ctx, c, bucket, "uploads/x", "x") },
		},
		{
			name:    "object-read-write under prefixes",
			key:     Key{Bucket: bucket, Permission: PermObjectReadWrite, Prefixes: "tmp/\nuploads/", Objects: "top.txt"},
			wantReq: testenv.TempCredentialsRequest{Permission: PermObjectReadWrite, Prefixes: []string{"tmp/", "uploads/"}, Objects: []string{"top.txt"}},
			allowed: func(c *s3.Client) error { return putObject(ctx, c, bucket, "uploads/new.txt", "new") },
			denied:  func(c *s3.Client) error { return putObject(ctx, c, bucket, "elsewhere/new.txt", "new") },
		},
	}
	for _, tt := range scoped {
		t.Run(tt.name, func(t *testing.T) {
			cr, err := p.Mint(ctx, tt.key)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			is := fake.Issued()
			r := is[len(is)-1].Request
			if r.Permission != tt.wantReq.Permission || fmt.Sprint(r.Prefixes) != fmt.Sprint(tt.wantReq.Prefixes) ||
				fmt.Sprint(r.Objects) != fmt.Sprint(tt.wantReq.Objects) {
				t.Errorf("request = %+v, want permission %s prefixes %v objects %v",
					r, tt.wantReq.Permission, tt.wantReq.Prefixes, tt.wantReq.Objects)
			}
			c := s3Client(minio.Endpoint, cr)
			if err := tt.allowed(c); err != nil {
				t.Errorf("allowed operation: %v", err)
			}
			if err := tt.denied(c); httpStatus(err) != http.StatusForbidden || s3Code(err) != "AccessDenied" {
				t.Errorf("denied operation: err = %v, want a 403 AccessDenied", err)
			}
		})
	}
}

// TestCacheOverR2API puts the Cache in front of the real HTTP minter: concurrent first
// callers cost one API call, and a rate-limited API surfaces as ErrNoCredentials carrying
// the *APIError and its Retry-After.
func TestCacheOverR2API(t *testing.T) {
	fake := testenv.NewFakeCloudflare(t, testenv.FakeCloudflareConfig{ParentAccessKeyID: testParentForAPI})
	p := newTestR2API(t, fake, fake.Token())
	c := newTestCache(t, p, withBudget(t, BudgetLimits{Calls: 100, Window: 5 * time.Minute, Reserve: 25}))
	hold := make(chan struct{})
	fake.Inject(testenv.Fault{Hold: hold})

	key := Key{Bucket: "cached", Permission: PermObjectReadWrite}
	var wg sync.WaitGroup
	got := make([]aws.Credentials, 16)
	errs := make([]error, 16)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = c.Retrieve(t.Context(), key) })
	}
	close(hold)
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i].AccessKeyID != got[0].AccessKeyID {
			t.Errorf("caller %d: %s, %v", i, got[i].AccessKeyID, errs[i])
		}
	}
	if n := fake.Calls(); n != 1 {
		t.Errorf("API calls for 16 concurrent first callers = %d, want 1", n)
	}

	fake.Inject(testenv.Fault{Status: http.StatusTooManyRequests, RetryAfter: "300"})
	_, err := c.Retrieve(t.Context(), Key{Bucket: "limited", Permission: PermObjectReadOnly})
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("Retrieve while rate limited: err = %v, want ErrNoCredentials", err)
	}
	apiErr, ok := errors.AsType[*APIError](err)
	if !ok || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.RetryAfter != 5*time.Minute {
		t.Errorf("Retrieve while rate limited: err = %v, want the 429 with Retry-After 5m", err)
	}
	if st := c.Status(); len(st) != 2 || !st[0].Valid || st[1].Valid || !st[1].NextMint.IsZero() {
		t.Errorf("Status = %+v, want cached valid and limited with no background mint", st)
	}
	// The 429 blocks every call with the token until its Retry-After: another key fails
	// at once, with a *BudgetError, without calling the API.
	calls := fake.Calls()
	_, err = c.Retrieve(t.Context(), Key{Bucket: "other", Permission: PermObjectReadOnly})
	if be, ok := errors.AsType[*BudgetError](err); !ok || be.RetryAfter < 4*time.Minute || !errors.Is(err, ErrBudget) {
		t.Errorf("Retrieve of another key while blocked: err = %v, want a BudgetError of about 5m", err)
	}
	if fake.Calls() != calls {
		t.Errorf("the API was called while the token is blocked")
	}
}

func TestR2APIFailures(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name           string
		fault          testenv.Fault
		token          string // default: the fake's
		timeout        time.Duration
		wantStatus     int // 0: not an *APIError
		wantCodes      []int
		wantRetryAfter time.Duration
		wantIs         error
		wantText       []string
	}{
		{name: "500", fault: testenv.Fault{Status: 500}, wantStatus: 500, wantCodes: []int{10000}, wantText: []string{"500"}},
		{name: "429 retry-after seconds", fault: testenv.Fault{Status: 429, RetryAfter: "30"},
			wantStatus: 429, wantCodes: []int{10000}, wantRetryAfter: 30 * time.Second, wantText: []string{"retry after 30s"}},
		{name: "429 retry-after date", fault: testenv.Fault{Status: 429, RetryAfter: now.Add(2 * time.Minute).Format(http.TimeFormat)},
			wantStatus: 429, wantCodes: []int{10000}, wantRetryAfter: 2 * time.Minute},
		{name: "503 retry-after", fault: testenv.Fault{Status: 503, RetryAfter: "7"},
			wantStatus: 503, wantCodes: []int{10000}, wantRetryAfter: 7 * time.Second},
		{name: "retry-after garbage", fault: testenv.Fault{Status: 429, RetryAfter: "soon"}, wantStatus: 429, wantCodes: []int{10000}},
		{name: "error envelope", fault: testenv.Fault{Status: 400, Errors: []testenv.CFError{{Code: 10001, Message: "ttlSeconds too large"}, {Code: 10002, Message: "and more"}}},
			wantStatus: 400, wantCodes: []int{10001, 10002}, wantText: []string{"[10001] ttlSeconds too large", "[10002] and more"}},
		{name: "success false with 200", fault: testenv.Fault{Body: `{"success":false,"errors":[{"code":10042,"message":"bucket not found"}],"messages":[],"result":null}`},
			wantStatus: 200, wantCodes: []int{10042}, wantText: []string{"bucket not found"}},
		{name: "html 502", fault: testenv.Fault{Status: 502, Body: "<html>bad gateway</html>"}, wantStatus: 502},
		{name: "malformed json", fault: testenv.Fault{Body: `{"success": tru`}, wantText: []string{"decode response"}},
		{name: "not an envelope", fault: testenv.Fault{Body: `{}`}, wantText: []string{"no success field"}},
		{name: "no result", fault: testenv.Fault{Body: `{"success":true,"errors":[],"messages":[]}`}, wantText: []string{"lacks result"}},
		{name: "missing fields", fault: testenv.Fault{Body: `{"success":true,"errors":[],"messages":[],"result":{"accessKeyId":"AK"}}`},
			wantText: []string{"result.secretAccessKey", "result.sessionToken"}},
		{name: "wrong token", token: "not-the-token-xyz", wantStatus: 401, wantCodes: []int{10000}, wantText: []string{"Authentication error"}},
		{name: "server echoes the token", fault: testenv.Fault{Status: 400, Errors: []testenv.CFError{{Code: 10001, Message: "token cf-test-token is bad"}}},
			wantStatus: 400, wantCodes: []int{10001}, wantText: []string{"token REDACTED is bad"}},
		{name: "slow response", fault: testenv.Fault{Hang: true}, timeout: 200 * time.Millisecond, wantIs: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := testenv.NewFakeCloudflare(t, testenv.FakeCloudflareConfig{ParentAccessKeyID: testParentForAPI})
			token := fake.Token()
			if tt.token != "" {
				token = tt.token
			}
			p := newTestR2API(t, fake, token, func(o *R2APIOptions) {
				o.Now = func() time.Time { return now }
				if tt.timeout > 0 {
					o.Timeout = tt.timeout
				}
			})
			fake.Inject(tt.fault)
			cr, err := p.Mint(t.Context(), Key{Bucket: "fails", Permission: PermObjectReadOnly})
			if err == nil {
				t.Fatalf("Mint = %+v, want an error", cr)
			}
			msg := err.Error()
			for _, secret := range []string{fake.Token(), token} {
				if strings.Contains(msg, secret) || strings.Contains(fmt.Sprintf("%#v %+v", err, err), secret) {
					t.Errorf("error holds the API token: %s", msg)
				}
			}
			if !strings.HasPrefix(msg, "mint r2 credentials for fails: ") {
				t.Errorf("error %q does not say what failed", msg)
			}
			for _, want := range tt.wantText {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.wantIs)
			}
			apiErr, ok := errors.AsType[*APIError](err)
			if tt.wantStatus == 0 {
				if ok {
					t.Errorf("err = %v is an *APIError, want another error", err)
				}
				return
			}
			if !ok {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			if apiErr.StatusCode != tt.wantStatus || apiErr.RetryAfter != tt.wantRetryAfter {
				t.Errorf("APIError status %d, retry after %s; want %d, %s", apiErr.StatusCode, apiErr.RetryAfter, tt.wantStatus, tt.wantRetryAfter)
			}
			var codes []int
			for _, e := range apiErr.Errors {
				codes = append(codes, e.Code)
			}
			if fmt.Sprint(codes) != fmt.Sprint(tt.wantCodes) {
				t.Errorf("error codes = %v, want %v", codes, tt.wantCodes)
			}
			if want := tt.wantStatus == 429 || tt.wantStatus >= 500; apiErr.Temporary() != want {
				t.Errorf("Temporary() = %v, want %v", apiErr.Temporary(), want)
			}
		})
	}
}

func TestR2APIRefusesBeforeCalling(t *testing.T) {
	fake := testenv.NewFakeCloudflare(t, testenv.FakeCloudflareConfig{})
	p := newTestR2API(t, fake, fake.Token())
	tests := []struct {
		name    string
		key     Key
		wantErr string
	}{
		{name: "actions", key: Key{Bucket: "b", Permission: PermObjectReadOnly, Actions: "GetObject"}, wantErr: "cannot restrict actions"},
		{name: "bad permission", key: Key{Bucket: "b", Permission: "read"}, wantErr: `permission "read"`},
		{name: "no bucket", key: Key{Permission: PermObjectReadOnly}, wantErr: "bucket is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Mint(t.Context(), tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Mint: err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if n := fake.Calls(); n != 0 {
		t.Errorf("API calls = %d, want 0", n)
	}
}

func TestNewR2API(t *testing.T) {
	tests := []struct {
		name    string
		account string
		token   string
		parent  string
		opt     func(*R2APIOptions)
		wantErr string
	}{
		{name: "ok", account: "a", token: "secret-token", parent: "p", opt: func(*R2APIOptions) {}},
		{name: "no account", token: "secret-token", parent: "p", opt: func(*R2APIOptions) {}, wantErr: "account id is empty"},
		{name: "no token", account: "a", parent: "p", opt: func(*R2APIOptions) {}, wantErr: "api token is empty"},
		{name: "no parent", account: "a", token: "secret-token", opt: func(*R2APIOptions) {}, wantErr: "parent access key id is empty"},
		{name: "ttl over 7 days", account: "a", token: "secret-token", parent: "p", opt: func(o *R2APIOptions) { o.TTL = MaxR2TTL + time.Second }, wantErr: "ttl"},
		{name: "relative base url", account: "a", token: "secret-token", parent: "p", opt: func(o *R2APIOptions) { o.BaseURL = "api.cloudflare.com" }, wantErr: "base url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewR2API(tt.account, tt.token, tt.parent, tt.opt)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range []string{p.String(), p.GoString(), fmt.Sprintf("%v %+v %#v", p, p, p), p.LogValue().String()} {
					if strings.Contains(s, tt.token) {
						t.Errorf("%q holds the token", s)
					}
				}
				if p.endpoint != DefaultCloudflareAPI+"/accounts/a/r2/temp-access-credentials" {
					t.Errorf("endpoint = %s", p.endpoint)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewR2API: err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{name: "seconds", in: "120", want: 2 * time.Minute},
		{name: "spaces", in: " 5 ", want: 5 * time.Second},
		{name: "zero", in: "0", want: 0},
		{name: "negative", in: "-3", want: 0},
		{name: "http date", in: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		{name: "past date", in: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
		{name: "garbage", in: "later", want: 0},
		{name: "huge", in: "99999999999", want: MaxR2TTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestR2APIRequestBody checks the exact JSON sent, through a fake that records it.
func TestR2APIRequestBody(t *testing.T) {
	var mu sync.Mutex
	var got []testenv.TempCredentialsRequest
	fake := testenv.NewFakeCloudflare(t, testenv.FakeCloudflareConfig{
		ParentAccessKeyID: testParentForAPI,
		Mint: func(_ context.Context, req testenv.TempCredentialsRequest) (aws.Credentials, error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, req)
			return aws.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK", SessionToken: "ST"}, nil
		},
	})
	p := newTestR2API(t, fake, fake.Token(), func(o *R2APIOptions) { o.TTL = 90*time.Second + 400*time.Millisecond })
	cr, err := p.Mint(t.Context(), Key{Bucket: "body", Permission: PermAdminReadOnly, Prefixes: "a/\nb/", Objects: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if cr.AccessKeyID != "AK" || cr.SecretAccessKey != "SK" || cr.SessionToken != "ST" || cr.Source != "r2api" {
		t.Errorf("credentials = %+v", cr)
	}
	want := testenv.TempCredentialsRequest{Bucket: "body", ParentAccessKeyID: testParentForAPI, Permission: PermAdminReadOnly,
		TTLSeconds: 90, Prefixes: []string{"a/", "b/"}, Objects: []string{"c"}}
	if len(got) != 1 || fmt.Sprintf("%+v", got[0]) != fmt.Sprintf("%+v", want) {
		t.Errorf("request = %+v, want %+v", got, want)
	}
	if d := time.Until(cr.Expires); d > 90*time.Second || d < 80*time.Second {
		t.Errorf("expires in %s, want 90s (whole seconds asked)", d)
	}
}

// TestCacheCloseReleasesAPIConnections: closing a Cache over an R2API (what a reload that
// changes the account does) closes the API client's idle connection at once rather than
// leaving it, and its goroutines, for the transport's 90 s idle timeout (issue 12 item 12).
func TestCacheCloseReleasesAPIConnections(t *testing.T) {
	fake := testenv.NewFakeCloudflare(t, testenv.FakeCloudflareConfig{ParentAccessKeyID: testParentForAPI})
	p, err := NewR2API(fake.AccountID(), fake.Token(), testParentForAPI, func(o *R2APIOptions) { o.BaseURL = fake.BaseURL })
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCache(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Retrieve(t.Context(), Key{Bucket: "b", Permission: PermObjectReadOnly}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fake.ConnClosed():
		t.Fatal("the connection closed before Close")
	default:
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fake.ConnClosed():
	case <-time.After(10 * time.Second): // a bound on failure, not a wait for success
		t.Fatal("the API client's idle connection is still open after Close")
	}
}
