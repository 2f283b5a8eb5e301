package listen

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/signet-proxy/signet/config"
)

// pebble is an ACME CA (letsencrypt/pebble) running in the test process.
type pebble struct {
	directory string // ACME directory URL
	caRoot    string // file with the PEM certificate of the directory's HTTPS server
	rootPEM   []byte // the root that Pebble's certificates chain to
}

// startPebble runs Pebble until the test ends. Its validation authority connects to
// httpPort for HTTP-01 and tlsPort for TLS-ALPN-01, on the address "localhost" resolves
// to first; it really validates (PEBBLE_VA_ALWAYS_VALID is not set).
func startPebble(t *testing.T, httpPort, tlsPort int) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // else 5% of good nonces are rejected
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // else up to 5 s before each validation
	t.Setenv("PEBBLE_AUTHZREUSE", "0")      // every order is validated afresh
	logger := log.New(testWriter(t), "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	w := wfe.New(logger, store, va.New(logger, httpPort, tlsPort, false, "", store), authority,
		[]string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(w.Handler())
	t.Cleanup(srv.Close)

	caRoot := filepath.Join(t.TempDir(), "pebble-wfe.pem")
	wfePEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caRoot, wfePEM, 0o600); err != nil {
		t.Fatal(err)
	}
	root := authority.GetRootCert(0)
	return &pebble{
		directory: srv.URL + "/dir",
		caRoot:    caRoot,
		rootPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.DER}),
	}
}

// testWriter writes to t.Output() until the test ends, then discards: Pebble's
// goroutines outlive the test and may still log.
func testWriter(t *testing.T) io.Writer {
	w := &stoppableWriter{w: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		w.w = io.Discard
		w.mu.Unlock()
	})
	return w
}

type stoppableWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *stoppableWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// localhostIP is the address Pebble's validation authority connects to for "localhost":
// the first the system resolver gives, as in va.resolveIP.
func localhostIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.DefaultResolver.LookupHost(t.Context(), "localhost")
	if err != nil || len(addrs) == 0 {
		t.Fatalf("resolve localhost: %v %v", addrs, err)
	}
	return addrs[0]
}

func TestACME(t *testing.T) {
	tests := []struct {
		name  string
		email string
		// tlsALPN leaves TLS-ALPN-01 as the only challenge, answered on the S3 listener's
		// port: by certmagic's own listener while NewTLS obtains the first certificate,
		// then, on a forced renewal, by a server using Config.
		tlsALPN bool
	}{
		{name: "http-01", email: "ops@example.com"},
		{name: "tls-alpn-01 through Config", email: "ops@example.com", tlsALPN: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := localhostIP(t)
			httpPort, tlsPort := freePort(t, host), freePort(t, host)
			ca := startPebble(t, httpPort, tlsPort)
			cfg := config.TLS{
				Mode:                config.TLSACME,
				Domains:             []string{"localhost"},
				Email:               tc.email,
				CA:                  ca.directory,
				CARoot:              ca.caRoot,
				HTTPChallengeListen: net.JoinHostPort(host, strconv.Itoa(httpPort)),
				Storage:             t.TempDir(),
			}
			opts := func(o *Options) {
				if tc.tlsALPN {
					o.TLSALPNPort = tlsPort
					o.acmeIssuer = func(iss *certmagic.ACMEIssuer) { iss.DisableHTTPChallenge = true }
				}
			}
			tt, err := NewTLS(t.Context(), cfg, testLogger(t), opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tt.Close() })
			if !slices.Equal(tt.Config().NextProtos, []string{"h2", "http/1.1", "acme-tls/1"}) {
				t.Errorf("NextProtos = %q", tt.Config().NextProtos)
			}

			// An HTTPS client that trusts only Pebble's root.
			addr := net.JoinHostPort(host, "0")
			if tc.tlsALPN {
				addr = net.JoinHostPort(host, strconv.Itoa(tlsPort))
			}
			hellos := make(chan *tls.ClientHelloInfo, 64)
			addr = serveHTTPS(t, addr, tt.Config(), hellos)
			roots := poolOf(t, ca.rootPEM)
			leaf, err := getOK(t, addr, "localhost", roots)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(leaf.DNSNames, []string{"localhost"}) {
				t.Errorf("leaf names %q; want [localhost]", leaf.DNSNames)
			}

			if tc.tlsALPN {
				// The S3 listener holds the port now, so certmagic cannot bind it: the
				// challenge can only be answered through Config.
				drain(hellos)
				if err := tt.magic.RenewCertSync(t.Context(), "localhost", true); err != nil {
					t.Fatalf("renew through tls-alpn-01: %v", err)
				}
				if !sawACMETLS(hellos) {
					t.Error("renewed, but the server using Config saw no acme-tls/1 handshake")
				}
			}

			// Close stops the challenge server.
			if err := tt.Close(); err != nil {
				t.Fatal(err)
			}
			if c, err := net.Dial("tcp", cfg.HTTPChallengeListen); err == nil {
				c.Close()
				t.Errorf("after Close, %s still accepts connections", cfg.HTTPChallengeListen)
			}
			// Certificates already loaded keep serving.
			if _, err := getOK(t, addr, "localhost", roots); err != nil {
				t.Errorf("after Close: %v", err)
			}
		})
	}
}

// subprocessEnv marks a run of the test binary by TestACMEWithoutEmailNeverPrompts.
const subprocessEnv = "SIGNET_LISTEN_TEST_SUBPROCESS"

func TestACMEWithoutEmailNeverPrompts(t *testing.T) {
	if os.Getenv(subprocessEnv) == "1" {
		// In a fresh process: certmagic remembers the first e-mail address any ACME
		// issuer in the process used and would use it here instead of prompting.
		host := localhostIP(t)
		httpPort := freePort(t, host)
		ca := startPebble(t, httpPort, freePort(t, host))
		tt, err := NewTLS(t.Context(), config.TLS{
			Mode:                config.TLSACME,
			Domains:             []string{"localhost"},
			CA:                  ca.directory,
			CARoot:              ca.caRoot,
			HTTPChallengeListen: net.JoinHostPort(host, strconv.Itoa(httpPort)),
			Storage:             t.TempDir(),
		}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer tt.Close()
		if _, err := getOK(t, serveHTTPS(t, net.JoinHostPort(host, "0"), tt.Config(), nil), "localhost", poolOf(t, ca.rootPEM)); err != nil {
			t.Fatal(err)
		}
		return
	}
	// certmagic's prompt prints to stdout and reads an address from stdin: offer one and
	// check that it was neither asked for nor used.
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestACMEWithoutEmailNeverPrompts$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), subprocessEnv+"=1")
	cmd.Stdin = strings.NewReader("prompted@example.com\n")
	out, err := cmd.CombinedOutput()
	t.Logf("subprocess output:\n%s", out)
	if err != nil {
		t.Fatalf("subprocess: %v", err)
	}
	for _, s := range []string{"--- PASS: TestACMEWithoutEmailNeverPrompts", "registering account"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("subprocess output lacks %q", s)
		}
	}
	for _, s := range []string{"Please enter your email", "prompted@example.com\"", "mailto:prompted@example.com"} {
		if strings.Contains(string(out), s) {
			t.Errorf("subprocess output has %q: certmagic prompted for an e-mail address", s)
		}
	}
}

func drain(hellos chan *tls.ClientHelloInfo) {
	for {
		select {
		case <-hellos:
		default:
			return
		}
	}
}

// sawACMETLS reports whether a queued hello offered only acme-tls/1, as a CA validating
// TLS-ALPN-01 does.
func sawACMETLS(hellos chan *tls.ClientHelloInfo) bool {
	for {
		select {
		case h := <-hellos:
			if slices.Equal(h.SupportedProtos, []string{"acme-tls/1"}) {
				return true
			}
		default:
			return false
		}
	}
}

func TestACMEErrors(t *testing.T) {
	host := localhostIP(t)
	busy, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	ca := startPebble(t, freePort(t, host), freePort(t, host))
	good := config.TLS{
		Mode:                config.TLSACME,
		Domains:             []string{"localhost"},
		CA:                  ca.directory,
		CARoot:              ca.caRoot,
		HTTPChallengeListen: net.JoinHostPort(host, "0"),
	}
	tests := []struct {
		name string
		edit func(c *config.TLS)
	}{
		{name: "challenge port taken", edit: func(c *config.TLS) { c.HTTPChallengeListen = busy.Addr().String() }},
		{name: "ca_root missing", edit: func(c *config.TLS) { c.CARoot = filepath.Join(t.TempDir(), "nope.pem") }},
		{name: "ca not trusted", edit: func(c *config.TLS) { c.CARoot = "" }},
		{name: "no domains", edit: func(c *config.TLS) { c.Domains = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			cfg.Storage = t.TempDir()
			tc.edit(&cfg)
			tt, err := NewTLS(t.Context(), cfg, testLogger(t))
			if err == nil {
				tt.Close()
				t.Fatal("NewTLS: no error")
			}
			t.Log(err)
		})
	}
}
