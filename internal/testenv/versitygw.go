package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// VersityGWVersion is the versitygw release the tests run against.
const VersityGWVersion = "v1.8.0"

// VersityGW is a running versitygw: a real S3 server that verifies every SigV4 signature.
type VersityGW struct {
	// Endpoint is its base URL, http://127.0.0.1:PORT.
	Endpoint  string
	Region    string
	AccessKey string
	SecretKey string
	// DataDir is the posix backend's root: bucket b's object k is the file DataDir/b/k.
	DataDir string
	// RootCAs trusts its certificate when it serves HTTPS (StartVersityGWTLS); else nil.
	RootCAs *x509.CertPool
	// CertFile is that certificate's PEM file (for SSL_CERT_FILE); else "".
	CertFile string
}

// versityGWBinary finds the versitygw binary: $SIGNET_VERSITYGW, the tools cache that
// `make tools` and .ci/run fill, or PATH.
func versityGWBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SIGNET_VERSITYGW"); p != "" {
		return p
	}
	if dir, err := ToolsDir(); err == nil {
		p := filepath.Join(dir, "versitygw-"+VersityGWVersion, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	t.Fatalf("versitygw not found: run `make tools` (GOBIN=$(go env GOCACHE)/../signet-tools/versitygw-%s "+
		"go install github.com/versity/versitygw/cmd/versitygw@%s) or set SIGNET_VERSITYGW", VersityGWVersion, VersityGWVersion)
	return ""
}

// VersityGWBinary is the versitygw binary the tests run, for tests that start it their own
// way (the demo script); it fails t when there is none.
func VersityGWBinary(t testing.TB) string {
	t.Helper()
	return versityGWBinary(t)
}

// ToolsDir is where `make tools` installs test servers: $SIGNET_TOOLS, else
// <user cache dir>/signet-tools.
func ToolsDir() (string, error) {
	if d := os.Getenv("SIGNET_TOOLS"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "signet-tools"), nil
}

// StartVersityGW starts versitygw with the posix backend on a free loopback port and a
// fresh data directory, and stops it when the test ends.
func StartVersityGW(t testing.TB) *VersityGW {
	t.Helper()
	return startVersityGW(t, false)
}

// StartVersityGWTLS is StartVersityGW serving HTTPS (HTTP/1.1 only, as versitygw does)
// with a fresh self-signed certificate for 127.0.0.1, which RootCAs trusts.
func StartVersityGWTLS(t testing.TB) *VersityGW {
	t.Helper()
	return startVersityGW(t, true)
}

func startVersityGW(t testing.TB, useTLS bool) *VersityGW {
	t.Helper()
	bin := versityGWBinary(t)
	g := &VersityGW{
		Region:    "us-east-1",
		AccessKey: "vgwroot",
		SecretKey: "vgwroot-secret-key-for-tests",
		DataDir:   t.TempDir(),
	}
	addr := FreeAddr(t)
	g.Endpoint = "http://" + addr
	// Absolute paths: the posix backend changes its working directory.
	args := []string{"--access", g.AccessKey, "--secret", g.SecretKey, "--region", g.Region,
		"--port", addr, "--health", "/healthz", "--quiet"}
	client := &http.Client{Timeout: time.Second}
	if useTLS {
		certFile, keyFile, pool := selfSignedCert(t)
		g.Endpoint, g.RootCAs, g.CertFile = "https://"+addr, pool, certFile
		args = append(args, "--cert", certFile, "--key", keyFile)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	cmd := exec.Command(bin, append(args, "posix", g.DataDir)...)
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	waitHealthy(t, client, g.Endpoint+"/healthz", exited)
	return g
}

// selfSignedCert writes a self-signed certificate for 127.0.0.1 and its key to files, and
// returns them with a pool that trusts the certificate.
func selfSignedCert(t testing.TB) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "signet test upstream"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// WaitHealthy polls url until it answers 200, the process exits, or 10 s pass. Polling is
// the only readiness signal an external server gives.
func WaitHealthy(t testing.TB, url string, exited <-chan struct{}) {
	t.Helper()
	waitHealthy(t, &http.Client{Timeout: time.Second}, url, exited)
}

func waitHealthy(t testing.TB, client *http.Client, url string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 10s: %v", url, err)
		}
		select {
		case <-exited:
			t.Fatalf("server exited before %s became healthy (see its output above)", url)
		case <-tick.C:
		}
	}
}
