// Package testenv starts the real servers and fakes that signet's tests run against: a
// MinIO server (real SigV4 and session-token checks, STS AssumeRole for real temporary
// credentials) and a fake of Cloudflare's temp-access-credentials API. It is imported only
// by tests; _test.go files cannot be shared across packages.
//
// Missing tools make tests fail, not skip: CI must install them (see [MinIOBinary]).
package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// MinIOInstall is the command that installs the MinIO server where [MinIOBinary] looks
// (the tools dir is $SIGNET_TOOLS, else os.UserCacheDir()/signet-tools: $XDG_CACHE_HOME,
// else $HOME/.cache, on Linux).
const MinIOInstall = "GOBIN=${SIGNET_TOOLS:-$HOME/.cache/signet-tools}/minio-" + MinIOVersion + " go install github.com/minio/minio@" + MinIOVersion +
	" (or set SIGNET_MINIO to a minio server binary)"

// MinIOVersion is the MinIO server the tests run: a pseudo-version, since MinIO tags no Go
// module releases.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIORegion is the region MinIO signs for by default.
const MinIORegion = "us-east-1"

// MinIO is a running MinIO server on a loopback port with its own data directory.
type MinIO struct {
	// Endpoint is the S3 and STS endpoint, "http://127.0.0.1:PORT".
	Endpoint string
	// Host is Endpoint's host:port.
	Host string
	// RootUser and RootPassword are the root credentials.
	RootUser     string
	RootPassword string

	client *http.Client
}

// MinIOBinary finds the MinIO server: $SIGNET_MINIO, else [ToolsDir]/minio-<MinIOVersion>/minio,
// else `minio` on PATH.
func MinIOBinary() (string, error) {
	if p := os.Getenv("SIGNET_MINIO"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SIGNET_MINIO=%s: %w", p, err)
		}
		return p, nil
	}
	var cached string
	if dir, err := ToolsDir(); err == nil {
		cached = filepath.Join(dir, "minio-"+MinIOVersion, "minio")
		if _, err := os.Stat(cached); err == nil {
			return cached, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("find minio: SIGNET_MINIO unset, no %s, none on PATH", cached)
}

// MinIOOptions are StartMinIO's optional settings.
type MinIOOptions struct {
	// Env is added to the server's environment, e.g. MINIO_IDENTITY_OPENID_* (see
	// [OIDCIssuer.MinIOEnv]). Default: none.
	Env []string
}

// StartMinIO starts a MinIO server for the test and stops it in t.Cleanup. It fails the
// test, naming the install command, when the binary is missing.
func StartMinIO(t testing.TB, optFns ...func(*MinIOOptions)) *MinIO {
	t.Helper()
	var o MinIOOptions
	for _, fn := range optFns {
		fn(&o)
	}
	bin, err := MinIOBinary()
	if err != nil {
		t.Fatalf("MinIO server needed: %v\ninstall: %s", err, MinIOInstall)
	}
	m := &MinIO{
		RootUser:     "signetroot",
		RootPassword: "signet-root-secret-0123456789",
		client: &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConnsPerHost:   8,
		}},
	}
	t.Cleanup(m.client.CloseIdleConnections)
	addr, console := FreeAddr(t), FreeAddr(t)
	m.Host = addr
	m.Endpoint = "http://" + addr

	cmd := exec.Command(bin, "server", t.TempDir(), "--address", addr, "--console-address", console, "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.RootUser,
		"MINIO_ROOT_PASSWORD="+m.RootPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Env = append(cmd.Env, o.Env...)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start minio %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("minio output:\n%s", logs.String())
		}
	})

	// Readiness of an external server: bounded polling is the only way to learn it.
	ready := m.Endpoint + "/minio/health/ready"
	for try := 0; ; try++ {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("minio exited before it was ready: %v\n%s", err, logs.String())
		default:
		}
		if try == 300 {
			t.Fatalf("minio not ready after 15s on %s\n%s", addr, logs.String())
		}
		if m.ready(t, ready) {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready reports whether MinIO serves both S3 and STS: /minio/health/ready answers 200 before
// IAM is initialised, when AssumeRole still fails with "Server not initialized".
func (m *MinIO) ready(t testing.TB, healthURL string) bool {
	t.Helper()
	resp, err := m.client.Get(healthURL)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	_, err = m.AssumeRole(t.Context(), 15*time.Minute, "")
	switch {
	case err == nil:
		return true
	case strings.Contains(err.Error(), "not initialized"):
		return false
	default:
		t.Fatalf("minio STS: %v", err)
		return false
	}
}

// AssumeRole asks MinIO's STS for temporary credentials derived from the root user, valid
// for duration (MinIO accepts 900s to 12h). A non-empty policy is a session policy (IAM
// JSON) that narrows them.
func (m *MinIO) AssumeRole(ctx context.Context, duration time.Duration, policy string) (aws.Credentials, error) {
	form := url.Values{
		"Action":          {"AssumeRole"},
		"Version":         {"2011-06-15"},
		"DurationSeconds": {strconv.Itoa(int(duration / time.Second))},
	}
	if policy != "" {
		form.Set("Policy", policy)
	}
	body := []byte(form.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("assume role: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256(body)
	root := aws.Credentials{AccessKeyID: m.RootUser, SecretAccessKey: m.RootPassword}
	if err := v4.NewSigner().SignHTTP(ctx, root, req, hex.EncodeToString(sum[:]), "sts", MinIORegion, time.Now()); err != nil {
		return aws.Credentials{}, fmt.Errorf("assume role: sign: %w", err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("assume role: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("assume role: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return aws.Credentials{}, fmt.Errorf("assume role: status %d: %s", resp.StatusCode, raw)
	}
	var out struct {
		Result struct {
			Credentials struct {
				AccessKeyID     string    `xml:"AccessKeyId"`
				SecretAccessKey string    `xml:"SecretAccessKey"`
				SessionToken    string    `xml:"SessionToken"`
				Expiration      time.Time `xml:"Expiration"`
			} `xml:"Credentials"`
		} `xml:"AssumeRoleResult"`
	}
	if err := xml.Unmarshal(raw, &out); err != nil {
		return aws.Credentials{}, fmt.Errorf("assume role: decode response: %w", err)
	}
	c := out.Result.Credentials
	if c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" {
		return aws.Credentials{}, errors.New("assume role: response lacks credentials")
	}
	return aws.Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Source:          "minio-sts",
		CanExpire:       true,
		Expires:         c.Expiration,
	}, nil
}

// R2Like mints, through AssumeRole, credentials shaped like R2 temporary credentials: a
// session policy confines them to req's bucket (and prefixes/objects, for object actions)
// with req's permission. It is the usual Mint of a [FakeCloudflare] in front of MinIO.
// MinIO's shortest lifetime is 900s, so shorter ttlSeconds get 900s; the caller computes
// expiry from what it asked for, so that only makes the credentials outlive their use.
func (m *MinIO) R2Like(ctx context.Context, req TempCredentialsRequest) (aws.Credentials, error) {
	d := min(max(req.TTLSeconds, 900), 12*3600)
	return m.AssumeRole(ctx, time.Duration(d)*time.Second, R2SessionPolicy(req))
}

// R2SessionPolicy is an IAM policy granting on req.Bucket what req.Permission grants on R2.
func R2SessionPolicy(req TempCredentialsRequest) string {
	bucketARN := "arn:aws:s3:::" + req.Bucket
	var objects []string
	for _, p := range req.Prefixes {
		objects = append(objects, bucketARN+"/"+p+"*")
	}
	for _, o := range req.Objects {
		objects = append(objects, bucketARN+"/"+o)
	}
	if len(objects) == 0 {
		objects = []string{bucketARN + "/*"}
	}
	read := []string{"s3:GetObject", "s3:GetBucketLocation", "s3:ListBucket",
		"s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts"}
	write := []string{"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
	var actions []string
	switch req.Permission {
	case "object-read-only":
		actions = read
	case "object-read-write":
		actions = append(read, write...)
	case "admin-read-only":
		actions = []string{"s3:Get*", "s3:List*"}
	default: // admin-read-write
		actions = []string{"s3:*"}
	}
	policy := map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Effect":   "Allow",
			"Action":   actions,
			"Resource": append([]string{bucketARN}, objects...),
		}},
	}
	b, _ := json.Marshal(policy) // maps of strings: cannot fail
	return string(b)
}

// lockedBuffer collects a child process's output; Wait's copy goroutines write to it while
// a failing test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep the first MiB: enough to see why it failed
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Clone(b.buf.String())
}
