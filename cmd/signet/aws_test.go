package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/signet-proxy/signet/internal/testenv"
)

// awsProcEnv is the environment of a signet process in an AWS test: this process's without
// any AWS_* variable, shared config files that do not exist, instance metadata off (never
// 169.254.169.254), then extra.
func awsProcEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	dir := t.TempDir()
	env = append(env, "AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true")
	return append(env, extra...)
}

// createMinIOBucket creates bucket on m with the root keys.
func createMinIOBucket(t *testing.T, m *testenv.MinIO, bucket string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, m.Endpoint+"/"+bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	const unsigned = "UNSIGNED-PAYLOAD"
	req.Header.Set("X-Amz-Content-Sha256", unsigned)
	root := aws.Credentials{AccessKeyID: m.RootUser, SecretAccessKey: m.RootPassword}
	if err := v4.NewSigner().SignHTTP(t.Context(), root, req, unsigned, "s3", testenv.MinIORegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create bucket %s: %s", bucket, resp.Status)
	}
}

// upstreamRequest is one request signet sent upstream: when, and with which access key.
type upstreamRequest struct {
	at          time.Time
	accessKeyID string
}

// recordingFront forwards to m untouched (Host included, so that signatures stay valid)
// and records the access key each request was signed with (all but /readyz's unsigned
// HEAD / reachability probes).
func recordingFront(t *testing.T, m *testenv.MinIO) (string, func() []upstreamRequest) {
	t.Helper()
	target, _ := url.Parse(m.Endpoint)
	credRE := regexp.MustCompile(`Credential=([^/]+)/`)
	var mu sync.Mutex
	var seen []upstreamRequest
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			if r.In.Method == http.MethodHead && r.In.URL.Path == "/" && r.In.Header.Get("Authorization") == "" {
				return // /readyz's reachability probe, which signs nothing
			}
			id := ""
			if m := credRE.FindStringSubmatch(r.In.Header.Get("Authorization")); m != nil {
				id = m[1]
			}
			mu.Lock()
			seen = append(seen, upstreamRequest{time.Now(), id})
			mu.Unlock()
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 32},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL, func() []upstreamRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]upstreamRequest(nil), seen...)
	}
}

// runCheck runs `signet check` as its own process with env.
func runCheck(t *testing.T, env []string, cfg string) (string, error) {
	t.Helper()
	bin, err := signetBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "check", "--config", cfg)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAWSContainerCredentialsUnderLoad runs signet with `aws: {}` on EKS Pod Identity's
// container credentials (a stand-in handing out real MinIO STS credentials declared to
// expire 4s after issue), MinIO verifying every request:
//   - check names the SDK provider that answered and the expiry;
//   - 16 clients through several lifetimes: no failed request, refreshed ahead of expiry,
//     never signed with a credential past its declared expiry;
//   - the endpoint failing (200 with an error document and no keys, nginx-s3-gateway
//     #537): requests go on with the last good credential, then 503 naming the account and
//     the cause, /readyz says so, the failure is never used as a credential;
//   - the endpoint back: requests work again;
//   - no secret or session token in logs, check output, metrics, 503 or /readyz bodies.
func TestAWSContainerCredentialsUnderLoad(t *testing.T) {
	m := testenv.StartMinIO(t)
	createMinIOBucket(t, m, "data")
	issued := make(chan testenv.IssuedCredential, 1000)
	const lifetime = 4 * time.Second
	c := testenv.NewContainerCredentials(t, testenv.CredentialsServerOptions{
		Mint:     func(ctx context.Context) (aws.Credentials, error) { return m.AssumeRole(ctx, 15*time.Minute, "") },
		Lifetime: lifetime,
		OnIssue:  issued,
	})
	frontURL, upstream := recordingFront(t, m)
	cfg := writeConfig(t, fmt.Sprintf(`admin_listen: 127.0.0.1:0
accounts:
  s3:
    endpoint: %s
    region: us-east-1
    credentials:
      aws: {}
      safety_margin: 1s
buckets:
  - {name: data, account: s3}
`, frontURL))
	env := awsProcEnv(t, c.Env()...)

	var exposed []string // every output a secret must not reach
	checkOut, err := runCheck(t, env, cfg)
	t.Log("\n" + checkOut)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	exposed = append(exposed, checkOut)
	if !regexp.MustCompile(`(?m)^data\s+s3\s+default\s+http://\S+\s+aws \(CredentialsEndpointProvider\)\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+ok$`).MatchString(checkOut) {
		t.Errorf("check does not name the provider and the expiry")
	}

	p := startSignetEnv(t, env, "--config", cfg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	base := "http://" + p.addr + "/data/"

	// Clients record each answer under the current phase.
	const (
		load = iota
		failing
		recovering
	)
	type answer struct {
		status int
		body   string
	}
	var (
		mu        sync.Mutex
		phase     = load
		answers   [3][]answer
		first503  = make(chan struct{})
		recovered = make(chan struct{})
		once503   sync.Once
		onceOK    sync.Once
	)
	current := func() int { mu.Lock(); defer mu.Unlock(); return phase }
	// record files an answer under the phase its request began in: a request signed
	// before a phase change may be answered after it.
	record := func(phase, status int, body string) {
		mu.Lock()
		defer mu.Unlock()
		answers[phase] = append(answers[phase], answer{status, body})
		switch {
		case phase == failing && status == http.StatusServiceUnavailable:
			once503.Do(func() { close(first503) })
		case phase == recovering && status == http.StatusOK:
			onceOK.Do(func() { close(recovered) })
		}
	}
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				key := fmt.Sprintf("c%d/o%d", i, n%4)
				body := fmt.Sprintf("client %d object %d", i, n)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+key, strings.NewReader(body))
				ph := current()
				status, text := send(client, req)
				if ctx.Err() != nil {
					return
				}
				record(ph, status, text)
				if status != http.StatusOK {
					continue
				}
				req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+key, nil)
				ph = current()
				status, text = send(client, req)
				if ctx.Err() != nil {
					return
				}
				if status == http.StatusOK && text != body {
					status, text = -1, "read back "+text
				}
				record(ph, status, text)
			}
		})
	}
	t.Cleanup(func() { stop(); wg.Wait() })
	setPhase := func(v int) { mu.Lock(); phase = v; mu.Unlock() }

	// Several lifetimes under load: 5 credentials issued to the serving process.
	for range 5 {
		select {
		case <-issued:
		case <-time.After(time.Minute):
			t.Fatal("no refresh within a minute")
		}
	}
	c.SetBogus(true)
	failedBefore := c.Failed()
	setPhase(failing)
	select {
	case <-first503:
	case <-time.After(time.Minute):
		t.Fatal("still serving a minute after the endpoint began failing")
	}
	ready := "http://" + p.adminAddr + "/readyz"
	code, readyBody := do(t, client, http.MethodGet, ready, nil)
	exposed = append(exposed, readyBody)
	if code != http.StatusServiceUnavailable || !strings.Contains(readyBody, "account s3") {
		t.Errorf("/readyz with no valid credential: %d %q", code, readyBody)
	}
	triedWhileServing := c.Failed() > failedBefore
	c.SetBogus(false)
	setPhase(recovering)
	select {
	case <-recovered:
	case <-time.After(time.Minute):
		t.Fatal("no recovery within a minute of the endpoint answering again")
	}
	if code, body := do(t, client, http.MethodGet, ready, nil); code != http.StatusOK {
		t.Errorf("/readyz after recovery: %d %q", code, body)
	}
	_, metrics := do(t, client, http.MethodGet, "http://"+p.adminAddr+"/metrics", nil)
	exposed = append(exposed, metrics)
	stop()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	ok := 0
	for _, a := range answers[load] {
		if a.status != http.StatusOK {
			t.Errorf("under load, with the endpoint working: %d %s", a.status, a.body)
		} else {
			ok++
		}
	}
	t.Logf("%d requests under load, %d upstream", ok, len(upstream()))
	okWhileFailing := 0
	for _, a := range answers[failing] {
		exposed = append(exposed, a.body)
		switch a.status {
		case http.StatusOK: // on the last good credential
			okWhileFailing++
		case http.StatusServiceUnavailable:
			for _, want := range []string{"ServiceUnavailable", "account s3", "fetch aws credentials: CredentialsEndpointProvider answered without keys"} {
				if !strings.Contains(a.body, want) {
					t.Errorf("the 503 does not say %q: %s", want, a.body)
				}
			}
		default:
			t.Errorf("while the endpoint failed: %d %s", a.status, a.body)
		}
	}
	if okWhileFailing == 0 || !triedWhileServing {
		t.Errorf("%d requests served on the last good credential; refresh tried while serving: %v", okWhileFailing, triedWhileServing)
	}

	all := c.Issued()
	expires := map[string]time.Time{}
	for _, ic := range all {
		expires[ic.AccessKeyID] = ic.Expires
	}
	keys := map[string]bool{}
	for _, u := range upstream() {
		exp, ok := expires[u.accessKeyID]
		switch {
		case !ok:
			t.Errorf("an upstream request was signed with access key %q, which the endpoint never issued", u.accessKeyID)
		case !u.at.Before(exp):
			t.Errorf("an upstream request was signed with a credential %s past its expiry", u.at.Sub(exp))
		}
		keys[u.accessKeyID] = true
	}
	if len(keys) < 4 {
		t.Errorf("upstream saw %d credentials: not refreshed under load", len(keys))
	}

	if !regexp.MustCompile(`signet_credential_mints_total\{account="s3",result="error"\} [1-9]`).MatchString(metrics) ||
		!regexp.MustCompile(`signet_credential_mints_total\{account="s3",result="ok"\} [1-9]`).MatchString(metrics) ||
		!strings.Contains(metrics, `signet_credential_expiry_seconds{account="s3",bucket="-",permission=""}`) {
		t.Errorf("metrics lack the account's mints or expiry:\n%s", grepLines(metrics, "signet_credential"))
	}

	exposed = append(exposed, p.log.String())
	secrets := []string{m.RootPassword}
	for _, ic := range all {
		secrets = append(secrets, ic.SecretAccessKey, ic.SessionToken)
	}
	for _, out := range exposed {
		for _, s := range secrets {
			if s != "" && strings.Contains(out, s) {
				t.Fatalf("a secret or session token reached an output: %.200s", out)
			}
		}
	}
}

// send does req and returns the status and body; -1 and the error for a transport failure.
func send(c *http.Client, req *http.Request) (int, string) {
	resp, err := c.Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestAWSWebIdentity runs signet as on EKS with IRSA: AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE in its environment, MinIO's real AssumeRoleWithWebIdentity
// (trusting a test OpenID issuer) at sts_endpoint. check names WebIdentityCredentials and
// the expiry; an object round-trips through serve, signed with the session credentials.
func TestAWSWebIdentity(t *testing.T) {
	issuer := testenv.NewOIDCIssuer(t)
	m := testenv.StartMinIO(t, func(o *testenv.MinIOOptions) { o.Env = issuer.MinIOEnv() })
	createMinIOBucket(t, m, "data")
	token := issuer.Token(t, "system:serviceaccount:default:app", "readwrite", time.Hour)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	env := awsProcEnv(t, "AWS_ROLE_ARN=arn:aws:iam::123456789012:role/app", "AWS_WEB_IDENTITY_TOKEN_FILE="+tokenFile)
	cfg := writeConfig(t, fmt.Sprintf(`accounts:
  s3:
    endpoint: %[1]s
    region: us-east-1
    credentials:
      aws: {sts_endpoint: %[1]s}
buckets:
  - {name: data, account: s3}
`, m.Endpoint))
	out, err := runCheck(t, env, cfg)
	t.Log("\n" + out)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !regexp.MustCompile(`(?m)^data\s+s3\s+default\s+\S+\s+aws \(WebIdentityCredentials\)\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+ok$`).MatchString(out) {
		t.Error("check does not name WebIdentityCredentials and the expiry")
	}
	for _, s := range []string{token, m.RootPassword} {
		if strings.Contains(out, s) {
			t.Error("check printed the web identity token or a secret")
		}
	}

	p := startSignetEnv(t, env, "--config", cfg)
	client := &http.Client{Transport: &http.Transport{}}
	url := "http://" + p.addr + "/data/hello.txt"
	if code, body := do(t, client, http.MethodPut, url, strings.NewReader("hello")); code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if code, body := do(t, client, http.MethodGet, url, nil); code != http.StatusOK || body != "hello" {
		t.Errorf("GET: %d %q", code, body)
	}
	if strings.Contains(p.log.String(), token) {
		t.Error("signet logged the web identity token")
	}
}
