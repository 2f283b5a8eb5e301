package main

import (
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
	"syscall"
	"testing"
	"time"

	"github.com/signet-proxy/signet/internal/testenv"
)

// relay is a TCP relay between signet and its upstream that reports how signet's side of
// each connection ended (a FIN or a reset) and passes the same on: a FIN as a half-close,
// a reset as a reset. With stall set it stops reading from signet once threshold bytes
// have passed, until stall is closed: an upstream that stopped reading mid-upload.
type relay struct {
	addr      string
	target    string
	threshold int64
	stall     chan struct{}

	reached     chan struct{} // closed when a connection has forwarded threshold bytes
	reachedOnce sync.Once
	// ended gets, per connection that reached threshold, how signet's side ended (nil for
	// a clean EOF), once the upstream has answered (or been reset).
	ended chan error
}

func startRelay(t *testing.T, target string, threshold int64, stall bool) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{addr: ln.Addr().String(), target: target, threshold: threshold,
		reached: make(chan struct{}), ended: make(chan error, 16)}
	if stall {
		r.stall = make(chan struct{})
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		if r.stall != nil {
			select {
			case <-r.stall:
			default:
				close(r.stall)
			}
		}
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { r.serve(c) })
		}
	})
	return r
}

func (r *relay) serve(in net.Conn) {
	defer in.Close()
	out, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer out.Close()
	back := make(chan struct{})
	go func() { // upstream to signet, until the upstream closes
		_, _ = io.Copy(in, out)
		close(back)
	}()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, rerr := in.Read(buf)
		if k > 0 {
			if _, err := out.Write(buf[:k]); err != nil {
				return
			}
			n += int64(k)
			if n >= r.threshold {
				r.reachedOnce.Do(func() { close(r.reached) })
				if r.stall != nil {
					<-r.stall
				}
			}
		}
		if rerr == nil {
			continue
		}
		if n < r.threshold {
			return
		}
		if errors.Is(rerr, io.EOF) {
			_ = out.(*net.TCPConn).CloseWrite() // a FIN, as signet's
			<-back                              // the upstream answered and closed
			r.ended <- nil
			return
		}
		_ = out.(*net.TCPConn).SetLinger(0) // a reset, as signet's
		out.Close()
		<-back
		r.ended <- rerr
		return
	}
}

// streamUpload PUTs size zero bytes to url from a goroutine, and returns at once.
func streamUpload(t *testing.T, url string, size int64) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", url, pr)
	req.ContentLength = size
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	go func() {
		chunk := make([]byte, 1<<20)
		for sent := int64(0); sent < size; sent += int64(len(chunk)) {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
}

func gwUpstreams() []struct {
	name  string
	start func(testing.TB) *testenv.VersityGW
} {
	return []struct {
		name  string
		start func(testing.TB) *testenv.VersityGW
	}{
		{"http upstream", testenv.StartVersityGW},
		{"https upstream", testenv.StartVersityGWTLS},
	}
}

// relayedConfig routes bucket alpha to gw through the relay.
func relayedConfig(t *testing.T, gw *testenv.VersityGW, r *relay, extra string) string {
	t.Helper()
	if err := os.Mkdir(filepath.Join(gw.DataDir, "alpha"), 0o755); err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if gw.CertFile != "" {
		scheme = "https"
		t.Setenv("SSL_CERT_FILE", gw.CertFile) // signet trusts the upstream's certificate
	}
	return writeConfig(t, fmt.Sprintf(`%sadmin_listen: 127.0.0.1:0
accounts:
  gw:
    endpoint: %s://%s
    credentials: {access_key_id: %s, secret_access_key: %s}
buckets:
  - {name: alpha, account: gw}
`, extra, scheme, r.addr, gw.AccessKey, gw.SecretKey))
}

// TestKilledMidUploadStoresNothing: signet SIGKILLed at 16 MiB of a 64 MiB upload (what
// Kubernetes does after the grace period, and what the OOM killer and a crash look like)
// leaves no truncated object upstream: the kernel resets the upload's connection instead
// of ending it with a FIN (issue 12 item 7).
func TestKilledMidUploadStoresNothing(t *testing.T) {
	for _, up := range gwUpstreams() {
		t.Run(up.name, func(t *testing.T) {
			gw := up.start(t)
			r := startRelay(t, hostPort(gw), 16<<20, false)
			p := startSignet(t, "--config", relayedConfig(t, gw, r, ""))
			streamUpload(t, "http://"+p.addr+"/alpha/big", 64<<20)
			select {
			case <-r.reached:
			case <-time.After(time.Minute):
				t.Fatal("the upload never reached 16 MiB upstream")
			}
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.done
			select {
			case err := <-r.ended:
				if err == nil {
					t.Error("the killed signet's upload connection ended with a FIN, which the upstream takes for the end of the body")
				}
			case <-time.After(time.Minute):
				t.Fatal("the upstream connection did not end after signet was killed")
			}
			if fi, err := os.Stat(filepath.Join(gw.DataDir, "alpha", "big")); err == nil {
				t.Errorf("the upstream stored a truncated object of %d bytes", fi.Size())
			}
		})
	}
}

// TestStopWithStalledUpstream: SIGTERM while an upload's upstream has stopped reading
// ends within shutdown_timeout plus the bounded abort, with a non-zero exit (it had to
// abort), the admin listener closed, and nothing stored upstream (issue 12 item 8).
func TestStopWithStalledUpstream(t *testing.T) {
	for _, up := range gwUpstreams() {
		t.Run(up.name, func(t *testing.T) {
			gw := up.start(t)
			r := startRelay(t, hostPort(gw), 8<<20, true)
			p := startSignet(t, "--config", relayedConfig(t, gw, r, "shutdown_timeout: 1s\n"))
			streamUpload(t, "http://"+p.addr+"/alpha/big", 64<<20)
			select {
			case <-r.reached:
			case <-time.After(time.Minute):
				t.Fatal("the upload never reached 8 MiB upstream")
			}
			stopped := time.Now()
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.done:
			case <-time.After(30 * time.Second): // shutdown_timeout 1s + abort 5s, with room
				t.Fatal("signet is still running 30s after SIGTERM")
			}
			t.Logf("exited %s after SIGTERM: %v", time.Since(stopped).Round(time.Millisecond), p.err)
			if p.err == nil {
				t.Error("exit status 0, want non-zero: requests in flight had to be aborted")
			}
			if c, err := net.Dial("tcp", p.adminAddr); err == nil {
				c.Close()
				t.Error("the admin listener still accepts connections")
			}
			close(r.stall) // the upstream reads again: what signet left behind reaches it
			select {
			case err := <-r.ended:
				if err == nil {
					t.Error("the aborted upload's connection ended with a FIN, which the upstream takes for the end of the body")
				}
			case <-time.After(time.Minute):
				t.Fatal("the upstream connection did not end")
			}
			if fi, err := os.Stat(filepath.Join(gw.DataDir, "alpha", "big")); err == nil {
				t.Errorf("the upstream stored a truncated object of %d bytes", fi.Size())
			}
		})
	}
}

// hostPort is gw's address without the scheme.
func hostPort(gw *testenv.VersityGW) string {
	_, hp, _ := strings.Cut(gw.Endpoint, "://")
	return hp
}

// TestReadyzReflectsRefusedKeys: /readyz answers at once from what signet holds: 503 once
// the upstream refuses the keys (a revoked key, while every request gets 403), and 503
// without waiting while a mint hangs (issue 12 item 13).
func TestReadyzReflectsRefusedKeys(t *testing.T) {
	// MinIO, not versitygw: versitygw answers an unknown key with 404 XAdminUserNotFound,
	// where S3, R2 and MinIO answer 403 InvalidAccessKeyId.
	mc := testenv.StartMinIO(t)
	fake := testenv.NewFakeCloudflare(t, testenv.FakeCloudflareConfig{ParentAccessKeyID: "parent"})
	fake.Inject(testenv.Fault{Hang: true})
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: 127.0.0.1:0
accounts:
  revoked:
    endpoint: %s
    credentials: {access_key_id: AKREVOKED0000000000, secret_access_key: %s}
  minted:
    r2_account_id: 0123456789abcdef0123456789abcdef
    endpoint: %s
    credentials:
      r2_temp_api: {api_token: %s, parent_access_key_id: parent, api_base_url: %s}
buckets:
  - {name: alpha, account: revoked}
  - {name: beta, account: minted}
`, mc.Endpoint, mc.RootPassword, mc.Endpoint, fake.Token(), fake.BaseURL)))
	// A bound, not a wait: readiness must not wait for the hanging mint.
	quick := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Second}
	ready := func() (int, string) {
		t.Helper()
		resp, err := quick.Get("http://" + p.adminAddr + "/readyz")
		if err != nil {
			t.Fatalf("readyz: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := ready()
	if code != 503 || !strings.Contains(body, "bucket beta (account minted)") {
		t.Errorf("readyz while the mint hangs: %d %q", code, body)
	}
	if strings.Contains(body, "bucket alpha") {
		t.Errorf("readyz before any request: alpha reported not ready: %q", body)
	}
	c := &http.Client{Transport: &http.Transport{}}
	if code, body := do(t, c, "GET", "http://"+p.addr+"/alpha?list-type=2", nil); code != 403 {
		t.Fatalf("a request signed with the revoked key: %d %s", code, body)
	}
	if code, body := ready(); code != 503 || !strings.Contains(body, "bucket alpha (account revoked): upstream refused the credentials") {
		t.Errorf("readyz after the upstream refused the key: %d %q", code, body)
	}
}

// TestCredentialsFileKeepsWorkingKeys: a credentials file rewritten with a key the
// upstream refuses (a rotator's mistake, or a file caught half-written) does not take the
// working keys away: signet goes back to them and requests keep succeeding (issue 12
// item 10).
func TestCredentialsFileKeepsWorkingKeys(t *testing.T) {
	mc := testenv.StartMinIO(t) // answers a wrong key 403 InvalidAccessKeyId, as S3 and R2 do
	credsFile := filepath.Join(t.TempDir(), "creds.yaml")
	write := func(keyID string) {
		replaceFile(t, credsFile, fmt.Sprintf("access_key_id: %s\nsecret_access_key: %s\n", keyID, mc.RootPassword))
	}
	write(mc.RootUser)
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: 127.0.0.1:0
accounts:
  gw: {endpoint: %s, credentials: {file: %q}}
buckets:
  - {name: alpha, account: gw}
`, mc.Endpoint, credsFile)))
	c := &http.Client{Transport: &http.Transport{}}
	if code, body := do(t, c, "PUT", "http://"+p.addr+"/alpha", nil); code != 200 {
		t.Fatalf("create bucket: %d %s", code, body)
	}
	list := "http://" + p.addr + "/alpha?list-type=2"
	if code, body := do(t, c, "GET", list, nil); code != 200 {
		t.Fatalf("with the working keys: %d %s", code, body)
	}
	write(mc.RootUser[:3]) // cut short: it parses
	p.waitLog(t, regexp.MustCompile(`msg="reloaded credentials file"`), 10*time.Second)
	for i := range 3 {
		if code, body := do(t, c, "GET", list, nil); code != 200 {
			t.Errorf("request %d after a rewrite with a refused key: %d %s", i, code, body)
		}
	}
	if code, body := do(t, c, "GET", "http://"+p.adminAddr+"/readyz", nil); code != 200 {
		t.Errorf("readyz with the working keys back: %d %q", code, body)
	}
}

// TestReloadReleasesAPIConnections: each reload that changes an r2_temp_api account
// closes the replaced account's API connection at once, instead of leaving it and its
// goroutines for the transport's 90 s idle timeout (issue 12 item 12).
func TestReloadReleasesAPIConnections(t *testing.T) {
	fake := testenv.NewFakeCloudflare(t, testenv.FakeCloudflareConfig{AccountID: "0123456789abcdef0123456789abcdef", ParentAccessKeyID: "parent"})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(upstream.Close)
	config := func(ttl int) string {
		return fmt.Sprintf(`admin_listen: 127.0.0.1:0
accounts:
  minted:
    r2_account_id: 0123456789abcdef0123456789abcdef
    endpoint: %s
    credentials:
      r2_temp_api: {api_token: %s, parent_access_key_id: parent, api_base_url: %s, ttl: %ds}
buckets:
  - {name: alpha, account: minted}
`, upstream.URL, fake.Token(), fake.BaseURL, ttl)
	}
	cfgPath := writeConfig(t, config(3600))
	p := startSignet(t, "--config", cfgPath)
	c := &http.Client{Transport: &http.Transport{}}
	for i := range 5 {
		if code, body := do(t, c, "GET", "http://"+p.addr+"/alpha/k", nil); code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body) // it minted, over a connection kept idle
		}
		replaceFile(t, cfgPath, config(3601+i))
		p.waitLog(t, regexp.MustCompile(`config reloaded`), 10*time.Second)
		select {
		case <-fake.ConnClosed():
		case <-time.After(10 * time.Second): // a bound on failure only
			t.Fatalf("reload %d: the replaced account's API connection is still open", i+1)
		}
	}
}
