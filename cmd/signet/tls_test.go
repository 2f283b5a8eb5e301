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
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestTLSLocalBucketHostsWithCurl: curl, an OpenSSL client like boto3 and the AWS CLI,
// trusting `signet ca-cert`, reaches bucket.localhost in virtual-hosted style, for a
// bucket routed at start and for one a reload adds. OpenSSL refuses *.localhost for these
// hosts, so this fails unless each has a certificate naming it.
func TestTLSLocalBucketHostsWithCurl(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	for _, b := range []string{"alpha", "beta"} {
		if err := os.Mkdir(filepath.Join(gw.DataDir, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tlsSection := fmt.Sprintf("tls: {mode: local, storage: %q}\n", t.TempDir())
	cfgPath := writeConfig(t, gwConfig(gw, "  - {name: alpha, account: gw}\n")+tlsSection)
	var caPEM bytes.Buffer
	if err := run(t.Context(), []string{"ca-cert", "--config", cfgPath}, &caPEM, io.Discard); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	upload := filepath.Join(t.TempDir(), "upload")
	if err := os.WriteFile(upload, []byte("through openssl"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startSignet(t, "--config", cfgPath)

	if out, err := curlHTTPS(t, p.addr, "alpha.localhost", "/obj", caFile, "-T", upload); err != nil {
		t.Fatalf("unsigned PUT: %v", err)
	} else if out != "" {
		t.Fatalf("unsigned PUT answered %q", out)
	}
	if out, err := curlHTTPS(t, p.addr, "alpha.localhost", "/obj", caFile); err != nil || out != "through openssl" {
		t.Fatalf("GET: %q %v", out, err)
	}

	replaceFile(t, cfgPath, gwConfig(gw, "  - {name: alpha, account: gw}\n  - {name: beta, account: gw}\n")+tlsSection)
	p.waitLog(t, regexp.MustCompile(`msg="config reloaded"`), 10*time.Second)
	if out, err := curlHTTPS(t, p.addr, "beta.localhost", "/", caFile); err != nil || !strings.Contains(out, "<ListBucketResult") {
		t.Fatalf("ListObjects on a bucket added by a reload: %q %v", out, err)
	}
}

// curlHTTPS runs curl for https://host:<addr's port>path, connecting to addr ("ip:port")
// through --resolve, trusting only the CA in caFile, with extra arguments args. It
// returns the body, and an error with curl's message when the request or the answer's
// status fails.
func curlHTTPS(t *testing.T, addr, host, path, caFile string, args ...string) (string, error) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is needed: apt-get install curl")
	}
	ip, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	hostport := net.JoinHostPort(host, port)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), curl, append([]string{"-sS", "--fail-with-body", "--max-time", "30",
		"--noproxy", "*", "--cacert", caFile, "--resolve", hostport + ":" + ip, "https://" + hostport + path}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("curl https://%s%s: %w: %s", hostport, path, err, stderr.Bytes())
	}
	return stdout.String(), nil
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
