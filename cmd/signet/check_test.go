package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/internal/testenv"
)

// TestCheck runs `signet check` against versitygw: a route that works, one signed with a
// wrong secret, and one whose bucket does not exist.
func TestCheck(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	for _, b := range []string{"present", "logs-1"} {
		if err := os.Mkdir(filepath.Join(gw.DataDir, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const wrongSecret = "definitely-the-wrong-secret"
	cfg := writeConfig(t, fmt.Sprintf(`
accounts:
  good: {endpoint: %[1]s, credentials: {access_key_id: %[2]s, secret_access_key: %[3]s}}
  bad: {endpoint: %[1]s, credentials: {access_key_id: %[2]s, secret_access_key: %[4]s}}
buckets:
  - {name: present, account: good}
  - {name: forged, account: bad, upstream_bucket: present}
  - {name: absent, account: good}
  - {name: "logs-*", account: good}
  - {name: "forged-*", account: bad}
`, gw.Endpoint, gw.AccessKey, gw.SecretKey, wrongSecret))

	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"check", "--config", cfg}, &stdout, &stderr)
	out := stdout.String()
	t.Log("\n" + out + stderr.String())
	if err == nil || !strings.Contains(err.Error(), "3 of 5 routes failed") {
		t.Errorf("err = %v", err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^BUCKET\s+ACCOUNT\s+JURISDICTION\s+ENDPOINT\s+CREDENTIALS\s+EXPIRES\s+RESULT$`),
		regexp.MustCompile(`(?m)^present\s+good\s+default\s+http://127\.0\.0\.1:\d+\s+static\s+never\s+ok$`),
		regexp.MustCompile(`(?m)^forged\s+bad\s+.*FAIL: 403 Forbidden SignatureDoesNotMatch`),
		regexp.MustCompile(`(?m)^absent\s+good\s+.*FAIL: 404 Not Found NoSuchBucket`),
		// A glob is checked by listing the account's buckets.
		regexp.MustCompile(`(?m)^logs-\*\s+good\s+.*ok: the upstream lists 1 matching bucket`),
		regexp.MustCompile(`(?m)^forged-\*\s+bad\s+.*FAIL: list buckets: 403 Forbidden.*SignatureDoesNotMatch`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output does not match %s", want)
		}
	}
	for _, secret := range []string{gw.SecretKey, wrongSecret} {
		if strings.Contains(out+stderr.String(), secret) {
			t.Errorf("check printed a secret")
		}
	}

	// An upstream that never answers: the row says which limit ran out.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	cfg = writeConfig(t, fmt.Sprintf(`
accounts:
  slow: {endpoint: %s, credentials: {access_key_id: a, secret_access_key: b}}
buckets:
  - {name: stalled, account: slow}
`, hang.URL))
	stdout.Reset()
	if err := run(t.Context(), []string{"check", "--config", cfg, "--timeout", "200ms"}, &stdout, &stderr); err == nil ||
		!strings.Contains(stdout.String(), "no answer within 200ms (--timeout)") {
		t.Errorf("a stalled upstream: %v\n%s", err, stdout.String())
	}

	// All good: exit status zero.
	cfg = writeConfig(t, fmt.Sprintf(`
accounts:
  good: {endpoint: %s, credentials: {access_key_id: %s, secret_access_key: %s}}
buckets:
  - {name: present, account: good}
`, gw.Endpoint, gw.AccessKey, gw.SecretKey))
	stdout.Reset()
	if err := run(t.Context(), []string{"check", "--config", cfg}, &stdout, &stderr); err != nil {
		t.Errorf("a passing config: %v\n%s", err, stdout.String())
	}
}

func TestWarnReadableSecrets(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cr3t"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "signet.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`accounts:
  a: {endpoint: "http://h", credentials: {access_key_id: a, secret_access_key_file: %q}}
  b: {endpoint: "http://h", credentials: {access_key_id: b, secret_access_key: inline-secret}}
buckets: [{name: abc, account: a}]
`, secret)), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	warnReadableSecrets(slog.New(slog.NewTextHandler(&buf, nil)), cfgPath, cfg)
	out := buf.String()
	for _, f := range []string{secret, cfgPath} {
		if !strings.Contains(out, "file="+f) {
			t.Errorf("no warning for %s:\n%s", f, out)
		}
	}
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, "inline-secret") {
		t.Error("the warning printed a secret")
	}
	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfgPath, 0o600); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	warnReadableSecrets(slog.New(slog.NewTextHandler(&buf, nil)), cfgPath, cfg)
	if buf.Len() > 0 {
		t.Errorf("warnings for 0600 files: %s", buf.String())
	}
}

// TestWarnReadableSecretsFromEnv: a config file whose secrets are all ${ENV} references
// holds none, so other users reading it is no concern.
func TestWarnReadableSecretsFromEnv(t *testing.T) {
	t.Setenv("SIGNET_TEST_SECRET", "s3cr3t")
	cfgPath := filepath.Join(t.TempDir(), "signet.yaml")
	if err := os.WriteFile(cfgPath, []byte(`accounts:
  a: {endpoint: "http://h", credentials: {access_key_id: a, secret_access_key: "${SIGNET_TEST_SECRET}"}}
buckets: [{name: abc, account: a}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfgPath, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	warnReadableSecrets(slog.New(slog.NewTextHandler(&buf, nil)), cfgPath, cfg)
	if buf.Len() > 0 {
		t.Errorf("warning for a config without inline secrets: %s", buf.String())
	}
}

func TestRestartOnly(t *testing.T) {
	base := func() *config.Config {
		return &config.Config{Listen: "127.0.0.1:9000", AdminListen: "127.0.0.1:9001", MaxConcurrentRequests: 1024}
	}
	for _, tc := range []struct {
		name   string
		change func(*config.Config)
		want   []string
	}{
		{"nothing", func(*config.Config) {}, nil},
		{"routes only", func(c *config.Config) { c.Buckets = []*config.Bucket{{Name: "b"}} }, nil},
		{"listen", func(c *config.Config) { c.Listen = "127.0.0.1:9100" }, []string{"listen"}},
		{"two", func(c *config.Config) { c.TLS.Mode = "local"; c.MaxConcurrentRequests = 8 }, []string{"tls", "max_concurrent_requests"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := base()
			tc.change(next)
			if got := restartOnly(base(), next); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
