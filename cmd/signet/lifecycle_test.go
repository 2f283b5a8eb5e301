package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/signet-proxy/signet/internal/testenv"
)

// replaceFile writes a file the atomic way editors and Kubernetes do: a temporary file
// renamed over the old one.
func replaceFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func gwConfig(gw *testenv.VersityGW, routes string) string {
	return fmt.Sprintf(`admin_listen: 127.0.0.1:0
accounts:
  gw:
    endpoint: %s
    credentials: {access_key_id: %s, secret_access_key: %s}
buckets:
%s`, gw.Endpoint, gw.AccessKey, gw.SecretKey, routes)
}

func do(t *testing.T, c *http.Client, method, url string, body io.Reader) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, url, body)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReloadUnderLoad: a route added while 16 clients stream requests is live within a
// second with no failed request; an invalid file is rejected, logged and counted, and
// the old config keeps serving.
func TestReloadUnderLoad(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	for _, b := range []string{"alpha", "beta"} {
		if err := os.Mkdir(filepath.Join(gw.DataDir, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := writeConfig(t, gwConfig(gw, "  - {name: alpha, account: gw}\n"))
	p := startSignet(t, "--config", cfgPath)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	base := "http://" + p.addr
	if code, body := do(t, client, "PUT", base+"/alpha/obj", strings.NewReader("payload")); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	if code, _ := do(t, client, "GET", base+"/beta/x", nil); code != 404 {
		t.Fatalf("beta before the reload: %d, want 404 (not configured)", code)
	}

	ctx, cancel := context.WithCancel(t.Context())
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", base+"/alpha/obj", nil)
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "payload" {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		})
	}

	replaceFile(t, cfgPath, gwConfig(gw, "  - {name: alpha, account: gw}\n  - {name: beta, account: gw}\n"))
	p.waitLog(t, regexp.MustCompile(`msg="config reloaded"`), time.Second)
	if code, body := do(t, client, "PUT", base+"/beta/new", strings.NewReader("b")); code != 200 {
		t.Errorf("the new route after the reload: %d %s", code, body)
	}

	replaceFile(t, cfgPath, "accounts: {gw: {endpoint: nope}}\nbuckets: [{name: alpha, account: gww}]\n")
	line := p.waitLog(t, regexp.MustCompile(`config reload rejected`), 2*time.Second)
	for _, want := range []string{`accounts.gw.endpoint`, `unknown account \"gww\"`, "signet.yaml:"} {
		if !strings.Contains(line, want) {
			t.Errorf("the rejection log lacks %q: %s", want, line)
		}
	}
	if code, _ := do(t, client, "GET", base+"/beta/new", nil); code != 200 {
		t.Errorf("after a rejected reload the previous config must keep serving: %d", code)
	}
	_, metrics := do(t, client, "GET", "http://"+p.adminAddr+"/metrics", nil)
	for _, want := range []string{`signet_config_reloads_total{result="error"} 1`, `signet_config_reloads_total{result="ok"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cancel()
	wg.Wait()
	if failed.Load() > 0 || ok.Load() == 0 {
		t.Errorf("%d requests failed, %d succeeded", failed.Load(), ok.Load())
	}
}

// TestGracefulShutdown: SIGTERM in the middle of a 200 MiB upload stops new connections,
// lets the upload finish, and exits 0.
func TestGracefulShutdown(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	if err := os.Mkdir(filepath.Join(gw.DataDir, "alpha"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startSignet(t, "--config", writeConfig(t, gwConfig(gw, "  - {name: alpha, account: gw}\n")))
	const size = 200 << 20
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", "http://"+p.addr+"/alpha/big", pr)
	req.ContentLength = size
	result := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		result <- err
	}()
	chunk := make([]byte, 1<<20)
	for range 10 { // 10 MiB: the upload is under way
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, regexp.MustCompile(`stopped accepting connections`), 5*time.Second)
	if c, err := net.Dial("tcp", p.addr); err == nil {
		c.Close()
		t.Error("a new connection was accepted after SIGTERM")
	}
	for range size/len(chunk) - 10 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatalf("the upload was cut: %v", err)
		}
	}
	pw.Close()
	if err := <-result; err != nil {
		t.Fatalf("upload during shutdown: %v", err)
	}
	<-p.done
	if p.err != nil {
		t.Errorf("exit: %v, want status 0", p.err)
	}
	if fi, err := os.Stat(filepath.Join(gw.DataDir, "alpha", "big")); err != nil || fi.Size() != size {
		t.Errorf("stored: %v %v", fi, err)
	}
}

// TestShutdownTimeoutAbortsUploads: an upload still running when shutdown_timeout runs out
// is aborted, not completed truncated (the object keeps its old contents), its client's
// connection is closed, /readyz says 503 while draining, and signet exits non-zero: it had
// to abort.
func TestShutdownTimeoutAbortsUploads(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	if err := os.Mkdir(filepath.Join(gw.DataDir, "alpha"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startSignet(t, "--config", writeConfig(t, "shutdown_timeout: 1s\n"+gwConfig(gw, "  - {name: alpha, account: gw}\n")))
	c := &http.Client{Transport: &http.Transport{}}
	if code, body := do(t, c, "PUT", "http://"+p.addr+"/alpha/obj", strings.NewReader("old contents")); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", "http://"+p.addr+"/alpha/obj", pr)
	req.ContentLength = 200 << 20
	status := make(chan int, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			status <- 0 // the connection went down first: also fine
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	if _, err := pw.Write(make([]byte, 10<<20)); err != nil { // under way, then stalled
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, regexp.MustCompile(`stopped accepting connections`), 5*time.Second)
	if code, body := do(t, c, "GET", "http://"+p.adminAddr+"/readyz", nil); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("readyz while draining: %d %q", code, body)
	}
	p.waitLog(t, regexp.MustCompile(`drain time ran out`), 10*time.Second)
	p.waitLog(t, regexp.MustCompile(`status=(400 .*error=IncompleteBody|499 .*error=ClientClosedRequest)`), 10*time.Second)
	// signet closed the connection; a stalled Go client notices only once its body source
	// does something, so end it.
	pw.CloseWithError(errors.New("test: the upload was aborted"))
	if code := <-status; code != 0 {
		t.Errorf("the aborted upload's client got %d, want its connection closed", code)
	}
	<-p.done
	if p.err == nil {
		t.Error("exit status 0, want non-zero: a request had to be aborted")
	}
	if b, err := os.ReadFile(filepath.Join(gw.DataDir, "alpha", "obj")); err != nil || string(b) != "old contents" {
		t.Errorf("after the aborted upload the object holds %d bytes (%v), want its old contents", len(b), err)
	}
}

// TestKeyFileRotation: rewriting a secret_access_key_file, with the config unchanged, makes
// signet sign with the new secret: the file is watched, and a reload reads it again.
func TestKeyFileRotation(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	if err := os.Mkdir(filepath.Join(gw.DataDir, "alpha"), 0o755); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(keyFile, []byte("an-old-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`accounts:
  gw:
    endpoint: %s
    credentials: {access_key_id: %s, secret_access_key_file: %s}
buckets:
  - {name: alpha, account: gw}
`, gw.Endpoint, gw.AccessKey, keyFile)))
	c := &http.Client{Transport: &http.Transport{}}
	if code, body := do(t, c, "GET", "http://"+p.addr+"/alpha?list-type=2", nil); code != 403 {
		t.Fatalf("with the old secret: %d %s", code, body)
	}
	if err := os.WriteFile(keyFile+".new", []byte(gw.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(keyFile+".new", keyFile); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, regexp.MustCompile(`config reloaded`), 10*time.Second)
	if code, body := do(t, c, "GET", "http://"+p.addr+"/alpha?list-type=2", nil); code != 200 {
		t.Errorf("after the key file was rotated: %d %s", code, body)
	}
}

// TestReadyzFollowsCredentials: /readyz is 503 naming the bucket while the credentials file
// holds expired keys, 200 once it holds valid ones, and still 200 when a rewrite brings
// expired keys (the valid ones are kept).
func TestReadyzFollowsCredentials(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	dir := t.TempDir()
	credsFile := filepath.Join(dir, "creds.json")
	write := func(exp time.Time) {
		replaceFile(t, credsFile, fmt.Sprintf(`{"access_key_id": %q, "secret_access_key": %q, "expiration": %q}`,
			gw.AccessKey, gw.SecretKey, exp.UTC().Format(time.RFC3339)))
	}
	write(time.Now().Add(-time.Hour))
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: 127.0.0.1:0
accounts:
  gw: {endpoint: %s, credentials: {file: %q}}
buckets:
  - {name: alpha, account: gw}
`, gw.Endpoint, credsFile)))
	client := &http.Client{Transport: &http.Transport{}}
	ready := "http://" + p.adminAddr + "/readyz"
	if code, body := do(t, client, "GET", ready, nil); code != 503 || !strings.Contains(body, "bucket alpha (account gw)") {
		t.Errorf("with expired credentials: %d %q", code, body)
	}
	write(time.Now().Add(time.Hour))
	p.waitLog(t, regexp.MustCompile(`msg="reloaded credentials file"`), 5*time.Second)
	if code, body := do(t, client, "GET", ready, nil); code != 200 {
		t.Errorf("with valid credentials: %d %q", code, body)
	}
	// A rotator that writes keys already expired does not take the good ones away.
	write(time.Now().Add(-time.Minute))
	p.waitLog(t, regexp.MustCompile(`keeping the previous credentials.*expired at`), 5*time.Second)
	if code, body := do(t, client, "GET", ready, nil); code != 200 {
		t.Errorf("after a rewrite with expired keys: %d %q", code, body)
	}
	if code, _ := do(t, client, "GET", "http://"+p.adminAddr+"/healthz", nil); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

// TestListenerFailureExitsNonZero: a port already taken is a clear error, not a hang.
func TestListenerFailureExitsNonZero(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct{ name, yaml string }{
		{"s3 listener", fmt.Sprintf("listen: %s\nadmin_listen: 127.0.0.1:0\n", taken.Addr())},
		{"admin listener", fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: %s\n", taken.Addr())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, tc.yaml+"accounts: {a: {endpoint: \"http://127.0.0.1:1\", credentials: {access_key_id: a, secret_access_key: b}}}\nbuckets: [{name: alpha, account: a}]\n")
			var stderr strings.Builder
			err := run(t.Context(), []string{"serve", "--config", cfg}, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), "address already in use") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// TestServeUnixSocket: listen: unix:///path serves S3 on a socket that only its owner and
// group can open.
func TestServeUnixSocket(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "via socket") }))
	t.Cleanup(up.Close)
	sock := filepath.Join(t.TempDir(), "signet.sock")
	cfg := writeConfig(t, fmt.Sprintf(`admin_listen: "off"
accounts: {a: {endpoint: %q, credentials: {access_key_id: a, secret_access_key: b}}}
buckets: [{name: alpha, account: a}]
`, up.URL))
	p := startSignet(t, "--config", cfg, "--listen", "unix://"+sock)
	if p.addr != sock {
		t.Errorf("listening on %q, want %q", p.addr, sock)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, %v", fi.Mode(), err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	if code, body := do(t, client, "GET", "http://localhost/alpha/k", nil); code != 200 || body != "via socket" {
		t.Errorf("%d %q", code, body)
	}
}
