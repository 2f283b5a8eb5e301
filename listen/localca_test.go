package listen

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/signet-proxy/signet/config"
)

func TestLocal(t *testing.T) {
	storage := filepath.Join(t.TempDir(), "signet") // created by NewTLS
	cfg := config.TLS{Mode: config.TLSLocal, Domains: []string{"signet.test"}, Storage: storage}
	tt, err := NewTLS(t.Context(), cfg, testLogger(t), func(o *Options) {
		o.LocalNames = []string{"demo.localhost", "my.photos.localhost"}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tt.Close() })
	caPEM, err := CACertificatePEM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkRoot(t, caPEM)
	roots := poolOf(t, caPEM) // the client trusts nothing else

	hellos := make(chan *tls.ClientHelloInfo, 1)
	addr4 := serveHTTPS(t, "127.0.0.1:0", tt.Config(), hellos)
	var addr6 string
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		addr6 = serveHTTPS(t, "[::1]:0", tt.Config(), hellos)
	}

	tests := []struct {
		name       string
		ipv6       bool
		serverName string // "" connects by IP: no SNI
		wantIP     string // the leaf's IP SAN, for connections without SNI
		wantDNS    string // the leaf's DNS SAN otherwise
		wantErr    bool
	}{
		{name: "127.0.0.1 without SNI", wantIP: "127.0.0.1"},
		{name: "::1 without SNI", ipv6: true, wantIP: "::1"},
		{name: "localhost", serverName: "localhost", wantDNS: "localhost"},
		{name: "a bucket host (LocalNames)", serverName: "demo.localhost", wantDNS: "demo.localhost"},
		{name: "a bucket host with dots (LocalNames)", serverName: "my.photos.localhost", wantDNS: "my.photos.localhost"},
		{name: "another bucket under localhost", serverName: "bucket.localhost", wantDNS: "*.localhost"},
		{name: "configured domain", serverName: "signet.test", wantDNS: "signet.test"},
		{name: "a name not configured", serverName: "example.com", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := addr4
			if tc.ipv6 {
				if addr6 == "" {
					t.Skip("no IPv6 loopback on this machine")
				}
				addr = addr6
			}
			select { // a previous case's hello, if any
			case <-hellos:
			default:
			}
			leaf, err := getOK(t, addr, tc.serverName, roots)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("GET with SNI %q: served %v; want a failed handshake", tc.serverName, leaf.DNSNames)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := (<-hellos).ServerName; got != tc.serverName {
				t.Errorf("the server saw SNI %q; want %q", got, tc.serverName)
			}
			switch {
			case tc.wantIP != "":
				if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP(tc.wantIP)) {
					t.Errorf("IP SANs = %v; want [%s]", leaf.IPAddresses, tc.wantIP)
				}
			default:
				if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != tc.wantDNS {
					t.Errorf("DNS SANs = %v; want [%s]", leaf.DNSNames, tc.wantDNS)
				}
			}
			if life := leaf.NotAfter.Sub(leaf.NotBefore); life > localLeafLifetime+localBackdate {
				t.Errorf("leaf lifetime %s; want at most %s", life, localLeafLifetime+localBackdate)
			}
		})
	}

	t.Run("files are 0600 in 0700 directories", func(t *testing.T) {
		checkModes(t, storage, true)
	})

	t.Run("a restart reuses the CA and the leaves", func(t *testing.T) {
		before, err := getOK(t, addr4, "localhost", roots)
		if err != nil {
			t.Fatal(err)
		}
		again, err := NewTLS(t.Context(), cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { again.Close() })
		caAgain, err := CACertificatePEM(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(caAgain, caPEM) {
			t.Fatal("CACertificatePEM changed after a restart")
		}
		after, err := getOK(t, serveHTTPS(t, "127.0.0.1:0", again.Config(), nil), "localhost", roots)
		if err != nil {
			t.Fatal(err)
		}
		if after.SerialNumber.Cmp(before.SerialNumber) != 0 {
			t.Errorf("the restarted TLS serves leaf %x; want the stored leaf %x", after.SerialNumber, before.SerialNumber)
		}
	})
}

// TestLocalOpenSSLClient: curl, whose TLS is OpenSSL's like Python's and the AWS CLI's,
// accepts local mode's certificates for localhost, the loopback address and the bucket
// hosts in LocalNames. OpenSSL refuses *.localhost (a wildcard directly under a
// single-label name) for other names, which is why bucket hosts get certificates of
// their own.
func TestLocalOpenSSLClient(t *testing.T) {
	_, addr, caPEM := serveLocal(t, "demo.localhost")
	tests := []struct {
		name     string
		host     string
		wantExit int // curl's exit status; 60 is a certificate it does not accept
	}{
		{name: "localhost", host: "localhost"},
		{name: "IP address", host: "127.0.0.1"},
		{name: "bucket host", host: "demo.localhost"},
		{name: "name covered only by *.localhost", host: "other.localhost", wantExit: 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := curlGet(t, addr, tc.host, caPEM)
			if tc.wantExit != 0 {
				if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() != tc.wantExit {
					t.Fatalf("%v; want curl to exit with %d", err, tc.wantExit)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out != "ok" {
				t.Fatalf("curl https://%s/: %q; want \"ok\"", tc.host, out)
			}
		})
	}
}

// serveLocal serves HTTPS in local mode with names as LocalNames, and returns its TLS, its
// address and the local CA's certificate.
func serveLocal(t *testing.T, names ...string) (*TLS, string, []byte) {
	t.Helper()
	cfg := config.TLS{Mode: config.TLSLocal, Storage: t.TempDir()}
	tt, err := NewTLS(t.Context(), cfg, testLogger(t), func(o *Options) { o.LocalNames = names })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tt.Close() })
	caPEM, err := CACertificatePEM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tt, serveHTTPS(t, "127.0.0.1:0", tt.Config(), nil), caPEM
}

// TestLocalAddNames: names added after start (a reload routing a new bucket) get
// certificates that OpenSSL clients accept, at once.
func TestLocalAddNames(t *testing.T) {
	tt, addr, caPEM := serveLocal(t)
	if _, err := curlGet(t, addr, "beta.localhost", caPEM); err == nil {
		t.Fatal("curl accepted beta.localhost before AddNames: the test proves nothing")
	}
	for range 2 { // adding a name twice is harmless
		if err := tt.AddNames(t.Context(), []string{"beta.localhost", "localhost"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := curlGet(t, addr, "beta.localhost", caPEM); err != nil {
		t.Fatal(err)
	}
	leaf, err := getOK(t, addr, "beta.localhost", poolOf(t, caPEM))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(leaf.DNSNames, []string{"beta.localhost"}) {
		t.Errorf("DNS SANs = %v; want [beta.localhost]", leaf.DNSNames)
	}

	var off *TLS // TLS off
	if err := off.AddNames(t.Context(), []string{"beta.localhost"}); err != nil {
		t.Errorf("AddNames with TLS off: %v", err)
	}
}

func TestLocalCACertificateFirst(t *testing.T) {
	// `signet ca-cert` before the first `signet serve`: the CA it prints is the one served.
	cfg := config.TLS{Mode: config.TLSLocal, Storage: t.TempDir()}
	caPEM, err := CACertificatePEM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	caAgain, err := CACertificatePEM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caAgain, caPEM) {
		t.Fatal("a second CACertificatePEM returned another CA")
	}
	tt, err := NewTLS(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tt.Close() })
	if _, err := getOK(t, serveHTTPS(t, "127.0.0.1:0", tt.Config(), nil), "bucket.localhost", poolOf(t, caPEM)); err != nil {
		t.Fatal(err)
	}
	checkModes(t, cfg.Storage, false)

	if _, err := CACertificatePEM(config.TLS{Mode: config.TLSACME, Storage: t.TempDir()}); err == nil {
		t.Error("CACertificatePEM in acme mode: no error")
	}
}

func TestLocalRenewsExpiringLeaf(t *testing.T) {
	// A leaf in storage that is due for renewal (here: a minute left of its lifetime) is
	// renewed through the local issuer when NewTLS manages it, and the new leaf is served.
	storage := t.TempDir()
	cfg := config.TLS{Mode: config.TLSLocal, Storage: storage}
	ca, err := loadOrCreateCA(t.Context(), &certmagic.FileStorage{Path: storage}, nil)
	if err != nil {
		t.Fatal(err)
	}
	magic, cache := newMagic(storage, "localhost", testLogger(t))
	magic.Issuers = []certmagic.Issuer{&localIssuer{ca: ca, names: localNames(nil), lifetime: time.Minute}}
	err = magic.ManageSync(t.Context(), []string{"localhost"})
	cache.Stop()
	if err != nil {
		t.Fatal(err)
	}

	tt, err := NewTLS(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tt.Close() })
	leaf, err := getOK(t, serveHTTPS(t, "127.0.0.1:0", tt.Config(), nil), "localhost", poolOf(t, ca.certPEM))
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(leaf.NotAfter); left < localLeafLifetime-time.Hour {
		t.Errorf("served leaf expires in %s; want a renewed one (%s)", left, localLeafLifetime)
	}
}

// checkRoot checks the local CA's certificate: ECDSA P-256, a CA for leaves only, ~10 years.
func checkRoot(t *testing.T, caPEM []byte) {
	t.Helper()
	b, _ := pem.Decode(caPEM)
	if b == nil {
		t.Fatalf("no PEM in %q", caPEM)
	}
	root, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("root key %T; want ECDSA P-256", root.PublicKey)
	}
	if !root.IsCA || !root.MaxPathLenZero {
		t.Errorf("root IsCA=%v MaxPathLenZero=%v; want a CA that signs leaves only", root.IsCA, root.MaxPathLenZero)
	}
	if years := root.NotAfter.Sub(root.NotBefore).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("root valid %.1f years; want 10", years)
	}
}

// checkModes fails unless every file under dir is 0600 and every directory 0700; dir
// itself is checked when signet created it.
func checkModes(t *testing.T, dir string, created bool) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			n++
		}
		if path == dir && !created {
			return nil // a t.TempDir, 0700 or not by the test framework's choice
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v; want %v", path, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("no files in %s", dir)
	}
}
