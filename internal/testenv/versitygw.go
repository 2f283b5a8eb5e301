package testenv

import (
	"context"
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
	cmd := exec.Command(bin, "--access", g.AccessKey, "--secret", g.SecretKey, "--region", g.Region,
		"--port", addr, "--health", "/healthz", "--quiet", "posix", g.DataDir)
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
	WaitHealthy(t, g.Endpoint+"/healthz", exited)
	return g
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
	client := &http.Client{Timeout: time.Second}
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
