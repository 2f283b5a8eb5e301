package listen

import (
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/internal/testenv"
)

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
			ca := testenv.StartPebble(t, httpPort, tlsPort)
			cfg := config.TLS{
				Mode:                config.TLSACME,
				Domains:             []string{"localhost"},
				Email:               tc.email,
				CA:                  ca.Directory,
				CARoot:              ca.CARoot,
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
			roots := poolOf(t, ca.RootPEM)
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
		ca := testenv.StartPebble(t, httpPort, freePort(t, host))
		tt, err := NewTLS(t.Context(), config.TLS{
			Mode:                config.TLSACME,
			Domains:             []string{"localhost"},
			CA:                  ca.Directory,
			CARoot:              ca.CARoot,
			HTTPChallengeListen: net.JoinHostPort(host, strconv.Itoa(httpPort)),
			Storage:             t.TempDir(),
		}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer tt.Close()
		if _, err := getOK(t, serveHTTPS(t, net.JoinHostPort(host, "0"), tt.Config(), nil), "localhost", poolOf(t, ca.RootPEM)); err != nil {
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
	ca := testenv.StartPebble(t, freePort(t, host), freePort(t, host))
	good := config.TLS{
		Mode:                config.TLSACME,
		Domains:             []string{"localhost"},
		CA:                  ca.Directory,
		CARoot:              ca.CARoot,
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
