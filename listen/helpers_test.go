package listen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serveHTTPS serves "ok" over TLS with tlsConfig on addr ("127.0.0.1:0", "[::1]:0", ...)
// until the test ends, and returns its address. hellos, when non-nil, receives each
// ClientHello the server sees, if it has room (the config is cloned to do that; the
// caller's is not changed).
func serveHTTPS(t *testing.T, addr string, tlsConfig *tls.Config, hellos chan<- *tls.ClientHelloInfo) string {
	t.Helper()
	if hellos != nil {
		tlsConfig = tlsConfig.Clone()
		get := tlsConfig.GetCertificate
		tlsConfig.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			select {
			case hellos <- h:
			default:
			}
			return get(h)
		}
	}
	ln, err := Listen(t.Context(), addr, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln)
}

// serveOn serves "ok" on ln until the test ends and returns its address.
func serveOn(t *testing.T, ln net.Listener) string {
	t.Helper()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(testLogger(t).Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// getOK sends GET / to the server at addr over HTTPS, trusting only roots, with
// serverName as the TLS server name ("" for the address's host, an IP: no SNI is sent),
// and returns the certificate the server presented. It fails unless the answer is 200 "ok".
func getOK(t *testing.T, addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	t.Helper()
	var d net.Dialer
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName},
		// Whatever the URL's host, connect to the test server.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	defer tr.CloseIdleConnections()
	host := serverName
	if host == "" {
		host, _, _ = net.SplitHostPort(addr)
	}
	_, port, _ := net.SplitHostPort(addr)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+net.JoinHostPort(host, port)+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("GET %s: %s %q", req.URL, resp.Status, body)
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("GET %s: no TLS connection state", req.URL)
	}
	return resp.TLS.PeerCertificates[0], nil
}

// curlGet fetches https://host:port/ from the server at addr (an IPv4 "ip:port") with
// curl, whose TLS is OpenSSL's, trusting only the CA certificate caPEM; host resolves to
// addr's IP through --resolve, so names under localhost need no DNS. It returns curl's
// output, and an error that includes curl's message when the request fails.
func curlGet(t *testing.T, addr, host string, caPEM []byte) (string, error) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is needed: apt-get install curl")
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ip, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	hostport := net.JoinHostPort(host, port)
	out, err := exec.CommandContext(t.Context(), curl, "-sS", "--fail", "--max-time", "30", "--noproxy", "*",
		"--cacert", ca, "--resolve", hostport+":"+ip, "https://"+hostport+"/").CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("curl https://%s/: %w: %s", hostport, err, out)
	}
	return string(out), nil
}

// poolOf returns a pool holding only the PEM certificates given.
func poolOf(t *testing.T, pems ...[]byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, p := range pems {
		if !pool.AppendCertsFromPEM(p) {
			t.Fatalf("no certificate in %q", p)
		}
	}
	return pool
}

// freePort returns a TCP port on host that was free a moment ago, for servers (Pebble's
// validation ports) that must be told a port before the listener on it exists.
func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
