package listen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/signet-proxy/signet/config"
)

// reloadTimeout only bounds a failing test; the tests synchronise on OnReload.
const reloadTimeout = 10 * time.Second

// testPair is a self-signed certificate for localhost and its key, in PEM.
type testPair struct {
	serial          *big.Int
	certPEM, keyPEM []byte
	pool            *x509.CertPool // trusts this certificate only
}

func newTestPair(t *testing.T, serial int64) testPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: it is its own root in the client's pool
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPair{
		serial:  tmpl.SerialNumber,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	p.pool = poolOf(t, p.certPEM)
	return p
}

// replaceFile writes data next to path and renames it over path, as rotators do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// k8sVolume lays out files as a Kubernetes secret volume does: dir/name -> ..data/name,
// ..data -> a timestamped directory holding the files.
type k8sVolume struct {
	dir string
	n   int
}

// publish writes files into a new timestamped directory and swaps ..data to it.
func (v *k8sVolume) publish(t *testing.T, files map[string][]byte) {
	t.Helper()
	v.n++
	ts := filepath.Join(v.dir, "..2026_01_02_15_04_05."+string(rune('0'+v.n)))
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(ts, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

func TestFiles(t *testing.T) {
	tests := []struct {
		name string
		// setup lays out the first pair and returns the two paths and a function that
		// replaces the files' contents.
		setup func(t *testing.T, first testPair) (certFile, keyFile string, replace func(cert, key []byte))
	}{
		{
			name: "write and rename",
			setup: func(t *testing.T, first testPair) (string, string, func(cert, key []byte)) {
				dir := t.TempDir()
				certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
				replaceFile(t, certFile, first.certPEM)
				replaceFile(t, keyFile, first.keyPEM)
				return certFile, keyFile, func(cert, key []byte) {
					replaceFile(t, certFile, cert)
					replaceFile(t, keyFile, key)
				}
			},
		},
		{
			name: "write and rename, cert and key in different directories",
			setup: func(t *testing.T, first testPair) (string, string, func(cert, key []byte)) {
				certFile, keyFile := filepath.Join(t.TempDir(), "cert.pem"), filepath.Join(t.TempDir(), "key.pem")
				replaceFile(t, certFile, first.certPEM)
				replaceFile(t, keyFile, first.keyPEM)
				return certFile, keyFile, func(cert, key []byte) {
					replaceFile(t, keyFile, key)
					replaceFile(t, certFile, cert)
				}
			},
		},
		{
			name: "kubernetes ..data swap",
			setup: func(t *testing.T, first testPair) (string, string, func(cert, key []byte)) {
				v := &k8sVolume{dir: t.TempDir()}
				v.publish(t, map[string][]byte{"tls.crt": first.certPEM, "tls.key": first.keyPEM})
				return filepath.Join(v.dir, "tls.crt"), filepath.Join(v.dir, "tls.key"), func(cert, key []byte) {
					v.publish(t, map[string][]byte{"tls.crt": cert, "tls.key": key})
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, second := newTestPair(t, 1), newTestPair(t, 2)
			certFile, keyFile, replace := tc.setup(t, first)

			reloads := make(chan error, 64)
			tt, err := NewTLS(t.Context(), config.TLS{Mode: config.TLSFiles, CertFile: certFile, KeyFile: keyFile},
				testLogger(t), func(o *Options) {
					o.OnReload = func(err error) {
						select {
						case reloads <- err:
						default: // the test stopped listening; never block the watcher
						}
					}
				})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := tt.Close(); err != nil {
					t.Error(err)
				}
			})
			addr := serveHTTPS(t, "127.0.0.1:0", tt.Config(), nil)
			served := func(roots testPair) *big.Int {
				t.Helper()
				leaf, err := getOK(t, addr, "localhost", roots.pool)
				if err != nil {
					t.Fatal(err)
				}
				return leaf.SerialNumber
			}
			if got := served(first); got.Cmp(first.serial) != 0 {
				t.Fatalf("serving serial %v; want %v", got, first.serial)
			}

			// A new pair: the first successful reload after the cert was replaced has
			// loaded it (a new cert with the old key does not load).
			replace(second.certPEM, second.keyPEM)
			waitReload(t, reloads, true)
			if got := served(second); got.Cmp(second.serial) != 0 {
				t.Fatalf("after the new pair: serving serial %v; want %v", got, second.serial)
			}

			// A broken pair: the reload fails and the previous pair keeps serving.
			replace([]byte("not a certificate"), second.keyPEM)
			waitReload(t, reloads, false)
			if got := served(second); got.Cmp(second.serial) != 0 {
				t.Fatalf("after a broken pair: serving serial %v; want %v", got, second.serial)
			}
		})
	}
}

// waitReload waits for a reload that succeeded (ok) or failed (!ok), skipping others.
func waitReload(t *testing.T, reloads <-chan error, ok bool) {
	t.Helper()
	timeout := time.After(reloadTimeout)
	for {
		select {
		case err := <-reloads:
			if (err == nil) == ok {
				if err != nil {
					t.Logf("reload failed as expected: %v", err)
				}
				return
			}
		case <-timeout:
			t.Fatalf("no reload with ok=%v within %s", ok, reloadTimeout)
		}
	}
}

func TestFilesBadPairAtStart(t *testing.T) {
	dir := t.TempDir()
	p, q := newTestPair(t, 1), newTestPair(t, 2)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	replaceFile(t, certFile, p.certPEM)
	replaceFile(t, keyFile, q.keyPEM)
	tt, err := NewTLS(t.Context(), config.TLS{Mode: config.TLSFiles, CertFile: certFile, KeyFile: keyFile}, nil)
	if err == nil {
		tt.Close()
		t.Fatal("NewTLS with a mismatched pair: no error")
	}
	t.Log(err)
}
