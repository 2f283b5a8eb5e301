package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signet-proxy/signet/internal/testenv"
)

// httpsS3 is an S3 client with dummy credentials that trusts only roots and dials addr
// whatever host name it addresses, so bucket.localhost needs no DNS.
func httpsS3(t *testing.T, endpoint, addr string, roots *x509.CertPool, pathStyle bool) *s3.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		UsePathStyle: pathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider("dummy", "dummy", ""),
		HTTPClient:   &http.Client{Transport: tr},
	})
}

func roundTrip(t *testing.T, c *s3.Client, bucket, key, body string) {
	t.Helper()
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
		t.Fatalf("put over https: %v", err)
	}
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get over https: %v", err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != body {
		t.Errorf("got %q", b)
	}
}

// TestTLSLocalCA: a client that trusts `signet ca-cert` completes PUT and GET over https,
// in path style and virtual-hosted style, and a restart keeps the same CA.
func TestTLSLocalCA(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	if err := os.Mkdir(filepath.Join(gw.DataDir, "alpha"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, gwConfig(gw, "  - {name: alpha, account: gw}\n")+fmt.Sprintf("tls: {mode: local, storage: %q}\n", t.TempDir()))
	var caPEM bytes.Buffer
	if err := run(t.Context(), []string{"ca-cert", "--config", cfgPath}, &caPEM, io.Discard); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM.Bytes()) {
		t.Fatalf("ca-cert printed no certificate: %q", caPEM.String())
	}
	p := startSignet(t, "--config", cfgPath)
	port := p.addr[strings.LastIndex(p.addr, ":")+1:]
	roundTrip(t, httpsS3(t, "https://127.0.0.1:"+port, p.addr, roots, true), "alpha", "path-style", "over tls")
	roundTrip(t, httpsS3(t, "https://localhost:"+port, p.addr, roots, false), "alpha", "virtual-hosted", "bucket.localhost over tls")

	// Restart: the same CA, so clients that trusted it keep working.
	_ = p.cmd.Process.Kill()
	<-p.done
	var again bytes.Buffer
	if err := run(t.Context(), []string{"ca-cert", "--config", cfgPath}, &again, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), caPEM.Bytes()) {
		t.Error("the CA changed across a restart")
	}
	p = startSignet(t, "--config", cfgPath)
	roundTrip(t, httpsS3(t, "https://127.0.0.1:"+p.addr[strings.LastIndex(p.addr, ":")+1:], p.addr, roots, true), "alpha", "after-restart", "same ca")
}

// TestTLSACME: signet obtains a certificate from an ACME CA (Pebble, in the test, with a
// real HTTP-01 challenge), and a client that trusts only Pebble's root completes PUT and
// GET over https.
func TestTLSACME(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	if err := os.Mkdir(filepath.Join(gw.DataDir, "alpha"), 0o755); err != nil {
		t.Fatal(err)
	}
	addrs, err := net.DefaultResolver.LookupHost(t.Context(), "localhost")
	if err != nil || len(addrs) == 0 {
		t.Fatalf("resolve localhost: %v", err)
	}
	host := addrs[0] // where Pebble's validation authority connects for "localhost"
	httpPort := freePort(t, host)
	ca := testenv.StartPebble(t, httpPort, freePort(t, host))
	cfgPath := writeConfig(t, gwConfig(gw, "  - {name: alpha, account: gw}\n")+fmt.Sprintf(`tls:
  mode: acme
  domains: [localhost]
  email: ops@example.com
  ca: %s
  ca_root: %s
  http_challenge_listen: %s
  storage: %s
`, ca.Directory, ca.CARoot, net.JoinHostPort(host, strconv.Itoa(httpPort)), t.TempDir()))
	p := startSignet(t, "--config", cfgPath)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.RootPEM)
	port := p.addr[strings.LastIndex(p.addr, ":")+1:]
	roundTrip(t, httpsS3(t, "https://localhost:"+port, p.addr, roots, true), "alpha", "acme", "certified by pebble")
}

func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
