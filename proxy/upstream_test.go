package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/internal/testenv"
	"github.com/signet-proxy/signet/proxy"
)

// hungUpstream accepts connections and never answers, until the test ends.
func hungUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // the listener was closed: the test is over
			}
			conns = append(conns, c)
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// lockedLog is a log written by the handler's goroutines and read by the test.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestUpstreamTimeouts: an upstream that accepts and never answers costs the client a 504
// after the account's response_header timeout, for object requests and ListBuckets alike.
func TestUpstreamTimeouts(t *testing.T) {
	addr := hungUpstream(t)
	h := newHandler(t, fmt.Sprintf(`
accounts:
  gw:
    endpoint: "http://%s"
    credentials: {access_key_id: a, secret_access_key: b}
    timeouts: {response_header: 50ms}
%s`, addr, routesYAML))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, path := range []string{"/alpha/k", "/"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		e := readError(t, resp)
		if resp.StatusCode != http.StatusGatewayTimeout || e.Code != "GatewayTimeout" || !strings.Contains(e.Message, addr) {
			t.Errorf("GET %s: %d %+v, want 504 GatewayTimeout naming %s", path, resp.StatusCode, e, addr)
		}
	}
}

// TestDefaultTimeoutsAreShort: by default a client gets its 504 within a minute however
// the upstream hangs (connecting, in TLS, or after the request).
func TestDefaultTimeoutsAreShort(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("accounts:\n  a: {endpoint: \"http://h\", credentials: {access_key_id: a, secret_access_key: b}}\nbuckets: [{name: abc, account: a}]\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tr := proxy.NewTransport(cfg.Accounts["a"].Timeouts)
	if tr.TLSHandshakeTimeout <= 0 || tr.ResponseHeaderTimeout <= 0 {
		t.Fatalf("transport without timeouts: %+v", tr)
	}
	to := cfg.Accounts["a"].Timeouts
	if total := to.Dial + to.TLSHandshake + to.ResponseHeader; total <= 0 || total > config.Duration(60e9) {
		t.Errorf("default timeouts add up to %v, want under a minute", total)
	}
}

// TestListBucketsUpstreamFailures: ListBuckets on a glob route answers the upstream's
// failure (a dead endpoint, credentials it refuses) instead of an empty 200.
func TestListBucketsUpstreamFailures(t *testing.T) {
	dead := testenv.FreeAddr(t)
	h := newHandler(t, fmt.Sprintf(`
accounts:
  gw: {endpoint: "http://%s", credentials: {access_key_id: a, secret_access_key: b}}
%s`, dead, routesYAML))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if e := readError(t, resp); resp.StatusCode != http.StatusBadGateway || !strings.Contains(e.Message, "list the buckets of account gw") || !strings.Contains(e.Message, dead) {
		t.Errorf("dead upstream: %d %+v", resp.StatusCode, e)
	}

	e := newEnv(t, "not-the-secret")
	resp, err = http.Get(e.signet.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if eb := readError(t, resp); resp.StatusCode != http.StatusBadGateway || !strings.Contains(eb.Message, "SignatureDoesNotMatch") {
		t.Errorf("wrong secret: %d %+v", resp.StatusCode, eb)
	}
}

// TestUpstreamRefusalIsLogged: when the upstream refuses signet's own signature, the
// request log names its error code and points at signet check, and holds nothing of
// what was signed.
func TestUpstreamRefusalIsLogged(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	var log lockedLog
	h := newHandlerWith(t, fmt.Sprintf(`
accounts:
  gw:
    endpoint: %s
    region: %s
    credentials: {access_key_id: %s, secret_access_key: not-the-secret}
%s`, gw.Endpoint, gw.Region, gw.AccessKey, routesYAML), func(o *proxy.Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&log, t.Output()), nil))
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/alpha/k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("SignatureDoesNotMatch")) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	got := log.String()
	for _, want := range []string{"upstream_error=SignatureDoesNotMatch", "signet check", "level=WARN"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	for _, leak := range append(logLeaks(), "StringToSign", "AWS4-HMAC-SHA256") {
		if strings.Contains(got, leak) {
			t.Errorf("log holds %q:\n%s", leak, got)
		}
	}
}

// TestReadyzReportsUnreachableUpstreams: /readyz is 503 and names each upstream that gives
// no HTTP answer (nothing listening, or accepting and never answering), and not one that
// answers, even with an error.
func TestReadyzReportsUnreachableUpstreams(t *testing.T) {
	dead := testenv.FreeAddr(t)
	hung := hungUpstream(t)
	gw := testenv.StartVersityGW(t)
	h := newHandler(t, fmt.Sprintf(`
accounts:
  gw: {endpoint: %s, region: %s, credentials: {access_key_id: %s, secret_access_key: not-the-secret}}
  dead: {endpoint: "http://%s", credentials: {access_key_id: a, secret_access_key: b}}
  hung: {endpoint: "http://%s", credentials: {access_key_id: a, secret_access_key: b}}
buckets:
  - {name: alpha, account: gw}
  - {name: "other-*", account: dead}
  - {name: "stuck-*", account: hung}
`, gw.Endpoint, gw.Region, gw.AccessKey, dead, hung))
	admin := httptest.NewServer(h.Admin(nil))
	t.Cleanup(admin.Close)
	resp, err := http.Get(admin.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "account dead: upstream http://"+dead+" cannot be reached") ||
		!strings.Contains(string(body), "account hung: upstream http://"+hung+" cannot be reached") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "account gw") {
		t.Errorf("an upstream that answers (403 to an unsigned request) is reported: %s", body)
	}
}
