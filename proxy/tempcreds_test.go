package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/internal/testenv"
	"github.com/signet-proxy/signet/proxy"
)

const testAccountID = "0123456789abcdef0123456789abcdef"

// r2env is signet with an r2_temp_api account: a fake Cloudflare API whose credentials are
// real MinIO STS credentials, and MinIO as the R2 endpoint.
type r2env struct {
	minio  *testenv.MinIO
	cf     *testenv.FakeCloudflare
	cfg    *config.Config
	signet *httptest.Server
	s3     *s3.Client
	// signedWith records, for each request that reached MinIO, the access key it was
	// signed with and when.
	mu         sync.Mutex
	signedWith []signedRequest
}

type signedRequest struct {
	key string
	at  time.Time
}

var credentialRE = regexp.MustCompile(`Credential=([^/]+)/`)

// newR2Env starts MinIO with buckets, the fake API and signet in front, configured by
// extra YAML for the credentials section and the routes.
func newR2Env(t *testing.T, mint func(context.Context, testenv.TempCredentialsRequest) (aws.Credentials, error), credsYAML, routes string, cacheOpts ...func(*creds.CacheOptions)) *r2env {
	t.Helper()
	e := &r2env{minio: testenv.StartMinIO(t)}
	root := s3.New(s3.Options{
		BaseEndpoint: aws.String(e.minio.Endpoint), Region: testenv.MinIORegion, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(e.minio.RootUser, e.minio.RootPassword, ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{}},
	})
	for _, b := range []string{"photos", "archive", "other"} {
		if _, err := root.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if mint == nil {
		mint = e.minio.R2Like
	}
	e.cf = testenv.NewFakeCloudflare(t, testenv.FakeCloudflareConfig{AccountID: testAccountID, ParentAccessKeyID: "parent-key", Mint: mint})

	// A recording hop in front of MinIO; it keeps the Host that signet signed.
	target, _ := url.Parse(e.minio.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	hop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			e.mu.Lock()
			e.signedWith = append(e.signedWith, signedRequest{m[1], time.Now()})
			e.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(hop.Close)

	credsYAML = strings.NewReplacer("$CF", e.cf.BaseURL, "$TOKEN", e.cf.Token()).Replace(credsYAML)
	yaml := fmt.Sprintf(`
accounts:
  r2:
    r2_account_id: %s
    endpoint: %s
    region: us-east-1
    credentials:
%s
buckets:
%s`, testAccountID, hop.URL, credsYAML, routes)
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(secretScanner(t, cfg), nil))
	table, err := proxy.Setup(cfg, logger, func(o *proxy.SetupOptions) { o.CacheOptions = cacheOpts })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { table.Close() })
	e.cfg = cfg
	e.signet = httptest.NewServer(proxy.New(table, proxy.Options{Logger: logger}))
	t.Cleanup(e.signet.Close)
	e.s3 = newS3Client(e.signet.URL)
	return e
}

const apiCreds = `      r2_temp_api:
        api_token: $TOKEN
        parent_access_key_id: parent-key
        api_base_url: $CF`

const r2Routes = `  - {name: photos, account: r2}
  - {name: reports, account: r2, upstream_bucket: archive, access: read-only}
  - {name: other, account: r2}`

func TestTemporaryCredentialsFromTheAPI(t *testing.T) {
	e := newR2Env(t, nil, apiCreds, r2Routes)
	ctx := t.Context()
	for i := range 5 {
		put(t, e.s3, "photos", fmt.Sprintf("p%d", i), []byte("photo"))
	}
	if got := get(t, e.s3, "photos", "p3"); string(got) != "photo" {
		t.Errorf("got %q", got)
	}
	// The read-only route reads with its own, read-only, credential.
	if _, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("reports")}); err != nil {
		t.Fatal(err)
	}
	issued := e.cf.Issued()
	if len(issued) != 2 {
		t.Fatalf("%d mints for 2 keys: %+v", len(issued), issued)
	}
	perms := map[string]string{}
	for _, is := range issued {
		perms[is.Request.Bucket] = is.Request.Permission
		if is.Request.TTLSeconds != 3600 || is.Request.ParentAccessKeyID != "parent-key" {
			t.Errorf("minted with %+v", is.Request)
		}
	}
	if perms["photos"] != "object-read-write" || perms["archive"] != "object-read-only" {
		t.Errorf("permissions asked: %v", perms)
	}

	t.Run("copy between two buckets is refused clearly", func(t *testing.T) {
		_, err := e.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("other"), Key: aws.String("c"), CopySource: aws.String("photos/p1")})
		if apiCode(err) != "InvalidRequest" || !strings.Contains(err.Error(), "each cover one bucket") {
			t.Errorf("copy: %v", err)
		}
		// Within one bucket one credential signs it.
		if _, err := e.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("photos"), Key: aws.String("c"), CopySource: aws.String("photos/p1")}); err != nil {
			t.Errorf("copy within a bucket: %v", err)
		}
	})
}

// TestTamperedSessionTokenIsRejected proves the server checks the session token signet
// sends: altered, it fails.
func TestTamperedSessionTokenIsRejected(t *testing.T) {
	var e *r2env
	e = newR2Env(t, func(ctx context.Context, req testenv.TempCredentialsRequest) (aws.Credentials, error) {
		c, err := e.minio.R2Like(ctx, req)
		c.SessionToken = "x" + c.SessionToken[1:]
		return c, err
	}, apiCreds, r2Routes)
	_, err := e.s3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if code := apiCode(err); code != "InvalidTokenId" && code != "AccessDenied" {
		t.Fatalf("put with an altered token: %v", err)
	}
}

// TestRefusedCredentialsAreReplaced: the upstream refuses the first credential; signet drops
// it, mints another and replays the bodiless request, so the client sees success. MinIO
// answers HEAD with no body, the code in X-Minio-Error-Code: HEAD is replayed too.
func TestRefusedCredentialsAreReplaced(t *testing.T) {
	for _, op := range []struct {
		name string
		do   func(*r2env) error
	}{
		{"list", func(e *r2env) error {
			_, err := e.s3.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("photos")})
			return err
		}},
		{"head bucket", func(e *r2env) error {
			_, err := e.s3.HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: aws.String("photos")})
			return err
		}},
		{"head object", func(e *r2env) error {
			_, err := e.s3.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("photos"), Key: aws.String("missing")})
			if apiCode(err) == "NotFound" {
				return nil // reached the object: the credentials were taken
			}
			return err
		}},
	} {
		t.Run(op.name, func(t *testing.T) {
			var e *r2env
			var n atomic.Int32
			e = newR2Env(t, func(ctx context.Context, req testenv.TempCredentialsRequest) (aws.Credentials, error) {
				c, err := e.minio.R2Like(ctx, req)
				if n.Add(1) == 1 {
					c.SessionToken = "x" + c.SessionToken[1:]
				}
				return c, err
			}, apiCreds, r2Routes, func(o *creds.CacheOptions) { o.InvalidateHoldoff = -1 })
			if err := op.do(e); err != nil {
				t.Fatalf("%s: %v", op.name, err)
			}
			if got := len(e.cf.Issued()); got != 2 {
				t.Errorf("%d mints, want 2", got)
			}
		})
	}
}

// TestNoCredentialsIs503: while the API fails, requests get a clear 503 naming the account
// and bucket (never the token); once it answers again, they succeed.
func TestNoCredentialsIs503(t *testing.T) {
	e := newR2Env(t, nil, apiCreds, r2Routes, func(o *creds.CacheOptions) { o.MinBackoff, o.MaxBackoff = time.Millisecond, time.Millisecond })
	e.cf.Inject(testenv.Fault{Status: http.StatusInternalServerError})
	resp, err := http.Get(e.signet.URL + "/photos/k")
	if err != nil {
		t.Fatal(err)
	}
	er := readError(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || er.Code != "ServiceUnavailable" ||
		!strings.Contains(er.Message, "account r2") || !strings.Contains(er.Message, "photos") || strings.Contains(er.Message, e.cf.Token()) {
		t.Errorf("%d %+v", resp.StatusCode, er)
	}
	// The API is back: after the (1 ms) backoff, the next request mints and succeeds.
	var status int
	for range 1000 { // bounded; each try takes a round trip, and the backoff is 1 ms
		resp, err := http.Get(e.signet.URL + "/photos/k")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if status = resp.StatusCode; status != http.StatusServiceUnavailable {
			break
		}
	}
	if status != http.StatusNotFound { // NoSuchKey: signed, accepted, and answered
		t.Errorf("after recovery: %d", status)
	}
}

// TestRefreshUnderLoad: with a short TTL and 32 clients for over three lifetimes, every
// request succeeds, each key is minted about once per refresh interval (never per
// request), and nothing is signed with credentials past their TTL.
func TestRefreshUnderLoad(t *testing.T) {
	const ttl = 6 * time.Second
	e := newR2Env(t, nil, `      r2_temp_api:
        api_token: $TOKEN
        parent_access_key_id: parent-key
        api_base_url: $CF
        ttl: 6s
      safety_margin: 2s`, r2Routes)
	put(t, e.s3, "photos", "k", []byte("v"))
	ctx, cancel := context.WithTimeout(t.Context(), 3*ttl+2*time.Second)
	defer cancel()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := range 32 {
		wg.Go(func() {
			bucket := []string{"photos", "reports"}[i%2]
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.signet.URL+"/"+bucket+"?list-type=2&max-keys=1", nil)
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 || ok.Load() < 100 {
		t.Errorf("%d requests failed, %d succeeded", failed.Load(), ok.Load())
	}
	issued := e.cf.Issued()
	perKey := map[string]int{}
	issuedAt := map[string]time.Time{}
	for _, is := range issued {
		perKey[is.Request.Bucket]++
		issuedAt[is.AccessKeyID] = is.At
	}
	// Usable lifetime 4 s, refreshed at 2/3 of it: a mint every ~2.7 s per key over ~20 s.
	for _, b := range []string{"photos", "archive"} {
		if n := perKey[b]; n < 4 || n > 14 {
			t.Errorf("bucket %s minted %d times in %s", b, n, 3*ttl+2*time.Second)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.signedWith {
		at, known := issuedAt[s.key]
		if !known {
			t.Errorf("a request was signed with a key the API never issued")
			continue
		}
		if s.at.After(at.Add(ttl)) {
			t.Errorf("a request at %s was signed with a credential issued at %s (ttl %s)", s.at.Format(time.StampMilli), at.Format(time.StampMilli), ttl)
		}
	}
	t.Logf("%d requests, %d mints", ok.Load(), len(issued))
}

// TestFileCredentialsRotate: rewriting the credentials file (write and rename, as
// Kubernetes and rotators do) switches signing to the new keys within a second, and no
// request fails meanwhile.
func TestFileCredentialsRotate(t *testing.T) {
	m := testenv.StartMinIO(t)
	a, err := m.AssumeRole(t.Context(), 15*time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.AssumeRole(t.Context(), 15*time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "creds.json")
	write := func(c aws.Credentials) {
		tmp := filepath.Join(dir, ".creds.tmp")
		body := fmt.Sprintf(`{"AccessKeyId": %q, "SecretAccessKey": %q, "SessionToken": %q, "Expiration": %q}`,
			c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expires.Format(time.RFC3339))
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(a)
	root := s3.New(s3.Options{
		BaseEndpoint: aws.String(m.Endpoint), Region: testenv.MinIORegion, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(m.RootUser, m.RootPassword, ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{}},
	})
	if _, err := root.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("rotating")}); err != nil {
		t.Fatal(err)
	}

	target, _ := url.Parse(m.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	sawB, warm := make(chan struct{}), make(chan struct{})
	var onceB, onceWarm sync.Once
	var withA atomic.Int64
	hop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch auth := r.Header.Get("Authorization"); {
		case strings.Contains(auth, "Credential="+b.AccessKeyID+"/"):
			onceB.Do(func() { close(sawB) })
		case strings.Contains(auth, "Credential="+a.AccessKeyID+"/") && withA.Add(1) == 20:
			onceWarm.Do(func() { close(warm) })
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(hop.Close)
	h := newHandler(t, fmt.Sprintf(`
accounts:
  files:
    endpoint: %s
    credentials: {file: %q}
buckets:
  - {name: rotating, account: files}
`, hop.URL, file))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(t.Context())
	var failed, ok atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{}}
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/rotating?list-type=2", nil)
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	<-warm // some requests on the old keys first
	write(b)
	select {
	case <-sawB:
	case <-time.After(time.Second):
		t.Error("signing did not switch to the new credentials within a second")
	}
	cancel()
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed during the rotation", failed.Load(), failed.Load()+ok.Load())
	}
}

// TestAdminEndpoints scrapes /metrics after traffic on minted credentials, and watches
// /readyz follow the credential source.
func TestAdminEndpoints(t *testing.T) {
	e := newR2Env(t, nil, apiCreds, r2Routes+"\n  - {name: \"logs-*\", account: r2}")
	reg := prometheus.NewRegistry()
	var h *proxy.Handler
	m := proxy.NewMetrics(reg, func() *proxy.Table { return h.Table() })
	table, err := proxy.Setup(e.cfg, slog.New(slog.DiscardHandler), func(o *proxy.SetupOptions) {
		o.Metrics = m
		o.CacheOptions = []func(*creds.CacheOptions){func(o *creds.CacheOptions) { o.MinBackoff, o.MaxBackoff = time.Millisecond, time.Millisecond }}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { table.Close() })
	h = proxy.New(table, proxy.Options{Metrics: m, Logger: slog.New(slog.DiscardHandler)})
	s3srv := httptest.NewServer(h)
	t.Cleanup(s3srv.Close)
	admin := httptest.NewServer(h.Admin(reg))
	t.Cleanup(admin.Close)
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// The API fails before anything was minted: not ready, and the body says for what.
	e.cf.Inject(testenv.Fault{Status: 500}, testenv.Fault{Status: 500}, testenv.Fault{Status: 500})
	if code, body := get(admin.URL + "/readyz"); code != 503 || !strings.Contains(body, "bucket photos (account r2)") {
		t.Errorf("readyz while the API fails: %d %q", code, body)
	}
	var code int
	for range 1000 { // the injected faults run out; each try is a real mint attempt
		if code, _ = get(admin.URL + "/readyz"); code == 200 {
			break
		}
	}
	if code != 200 {
		t.Errorf("readyz after the API recovered: %d", code)
	}

	client := newS3Client(s3srv.URL)
	put(t, client, "photos", "m", []byte("metrics"))
	get(s3srv.URL + "/nothere/x")
	// Client-chosen names never become series: buckets reached through a glob are counted
	// under it, and methods S3 does not have under "other".
	get(s3srv.URL + "/logs-client-chosen-a/x")
	get(s3srv.URL + "/logs-client-chosen-b/x")
	if req, err := http.NewRequest("MADEUP", s3srv.URL+"/photos/x", nil); err != nil {
		t.Fatal(err)
	} else if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	_, body := get(admin.URL + "/metrics")
	for _, want := range []string{
		`signet_requests_total{method="PUT",route="photos",status="200"} 1`,
		`signet_requests_total{method="GET",route="-",status="404"} 1`,
		`signet_request_duration_seconds_count{method="PUT"} 1`,
		`signet_request_body_bytes_sum{method="PUT"} 7`,
		`signet_response_body_bytes_count{method="GET"}`,
		`signet_requests_in_flight 0`,
		`signet_credential_mints_total{account="r2",result="error"}`,
		`signet_credential_mints_total{account="r2",result="ok"}`,
		`signet_credential_mint_duration_seconds_count{account="r2"}`,
		`signet_credential_expiry_seconds{account="r2",bucket="photos",permission="object-read-write"}`,
		`signet_credential_expiry_seconds{account="r2",bucket="logs-*",permission="object-read-write"}`,
		`signet_requests_total{method="other",route="-",status="405"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "nothere") || strings.Contains(body, "client-chosen") || strings.Contains(body, "MADEUP") || strings.Contains(body, e.cf.Token()) {
		t.Error("metrics carry a client-chosen bucket name or a secret")
	}
}

// TestReloadKeepsCredentials: a reload that leaves an account unchanged keeps its
// provider, so its buckets are not minted again; a changed account gets a new one.
func TestReloadKeepsCredentials(t *testing.T) {
	e := newR2Env(t, nil, apiCreds, r2Routes)
	put(t, e.s3, "photos", "before", []byte("x"))
	if n := len(e.cf.Issued()); n != 1 {
		t.Fatalf("%d mints before the reload", n)
	}
	h := proxy.New(mustSetup(t, e.cfg, nil), proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := newS3Client(srv.URL)
	put(t, c, "photos", "first", []byte("x"))
	minted := len(e.cf.Issued())

	// Same accounts, one more route: the provider and its credential stay.
	more := *e.cfg
	more.Buckets = append(append([]*config.Bucket(nil), e.cfg.Buckets...), &config.Bucket{Name: "extra", Account: "r2", Jurisdiction: "default", Access: "read-write", UpstreamBucket: "other"})
	old := h.Swap(mustSetup(t, &more, h.Table()))
	old.Retire(h.Table())
	put(t, c, "photos", "after", []byte("x"))
	if n := len(e.cf.Issued()); n != minted {
		t.Errorf("%d mints after a reload that kept the account, want %d", n, minted)
	}

	// A changed account (another TTL) starts afresh.
	changed := *e.cfg
	acct := *e.cfg.Accounts["r2"]
	api := *acct.Credentials.R2TempAPI
	api.TTL = config.Duration(30 * time.Minute)
	acct.Credentials.R2TempAPI = &api
	changed.Accounts = map[string]*config.Account{"r2": &acct}
	old = h.Swap(mustSetup(t, &changed, h.Table()))
	old.Retire(h.Table())
	put(t, c, "photos", "changed", []byte("x"))
	if n := len(e.cf.Issued()); n != minted+1 {
		t.Errorf("%d mints after the account changed, want %d", n, minted+1)
	}
}

// TestReloadRereadsKeyFiles: a reload with the config unchanged but its api_token_file
// rewritten (a rotated or fixed token) sets the account up again with the new token.
func TestReloadRereadsKeyFiles(t *testing.T) {
	e := newR2Env(t, nil, apiCreds, r2Routes)
	tokenFile := filepath.Join(t.TempDir(), "cf-token")
	if err := os.WriteFile(tokenFile, []byte("not-the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := *e.cfg
	acct := *e.cfg.Accounts["r2"]
	api := *acct.Credentials.R2TempAPI
	api.APIToken, api.APITokenFile = "", tokenFile
	acct.Credentials.R2TempAPI = &api
	cfg.Accounts = map[string]*config.Account{"r2": &acct}

	h := proxy.New(mustSetup(t, &cfg, nil), proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	status := func() int {
		resp, err := http.Get(srv.URL + "/photos?list-type=2")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status(); code != http.StatusServiceUnavailable {
		t.Fatalf("with the wrong token: %d", code)
	}
	if err := os.WriteFile(tokenFile, []byte(e.cf.Token()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := h.Swap(mustSetup(t, &cfg, h.Table()))
	old.Retire(h.Table())
	if code := status(); code != http.StatusOK {
		t.Errorf("after the token file was fixed and the config reloaded: %d", code)
	}
}

func mustSetup(t *testing.T, cfg *config.Config, prev *proxy.Table) *proxy.Table {
	t.Helper()
	table, err := proxy.Setup(cfg, slog.New(slog.DiscardHandler), func(o *proxy.SetupOptions) { o.Previous = prev })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { table.Close() })
	return table
}
