package compat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/signet-proxy/signet/internal/testenv"
)

// Every client gets these dummy credentials: signet replaces them.
const (
	dummyKeyID  = "dummy"
	dummySecret = "dummy-secret"
	region      = "us-east-1"
)

// presignExpiry is how long presigned URLs live.
const presignExpiry = 5 * time.Minute

// command runs a client program with an environment built from nothing: this machine
// may have other copies of the clients earlier on PATH (pyenv) and CA-bundle variables
// that break some of them (rclone).
type command struct {
	bin  string
	args []string // before each operation's own
	env  []string
	dir  string
}

// newCommand prepares bin with PATH, HOME (a fresh directory) and the client's own env.
func newCommand(t *testing.T, bin string, env ...string) *command {
	t.Helper()
	home := t.TempDir()
	return &command{bin: bin, dir: home, env: append([]string{"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8"}, env...)}
}

// run runs the command with args and returns its standard output; the error carries both
// outputs.
func (c *command) run(ctx context.Context, args ...string) (string, error) {
	args = append(append([]string(nil), c.args...), args...)
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env, cmd.Dir = c.env, c.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\nstdout:\n%s\nstderr:\n%s", filepath.Base(c.bin), strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String(), nil
}

// requireFile fails the test when a client is not installed at path.
func requireFile(t *testing.T, path, install string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): %s", path, err, install)
	}
}

const debianInstall = "apt-get install -y --no-install-recommends awscli rclone s3cmd python3-boto3 (.ci/run installs them)"

// awsEnv is the environment of the AWS CLI and boto3: dummy credentials, no config files,
// no instance metadata, and no retries, so that a failure is not hidden by a retry.
var awsEnv = []string{
	"AWS_ACCESS_KEY_ID=" + dummyKeyID, "AWS_SECRET_ACCESS_KEY=" + dummySecret, "AWS_DEFAULT_REGION=" + region,
	"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER=",
}

// awsCLI is Debian's AWS CLI v2: `aws s3` for transfers, `aws s3api` for the rest.
type awsCLI struct{ cmd *command }

func newAWSCLI(t *testing.T, endpoint string) client {
	t.Helper()
	requireFile(t, "/usr/bin/aws", debianInstall)
	c := newCommand(t, "/usr/bin/aws", awsEnv...)
	c.args = []string{"--endpoint-url", endpoint}
	return awsCLI{c}
}

func (a awsCLI) MakeBucket(ctx context.Context, bucket string) error {
	_, err := a.cmd.run(ctx, "s3", "mb", "s3://"+bucket)
	return err
}

func (a awsCLI) Put(ctx context.Context, bucket, key, file string) error {
	_, err := a.cmd.run(ctx, "s3", "cp", "--no-progress", file, "s3://"+bucket+"/"+key)
	return err
}

func (a awsCLI) Get(ctx context.Context, bucket, key, file string) error {
	_, err := a.cmd.run(ctx, "s3", "cp", "--no-progress", "s3://"+bucket+"/"+key, file)
	return err
}

func (a awsCLI) List(ctx context.Context, bucket, prefix string) ([]string, error) {
	out, err := a.cmd.run(ctx, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix, "--output", "json")
	if err != nil {
		return nil, err
	}
	var res struct{ Contents []struct{ Key string } }
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			return nil, fmt.Errorf("parse list-objects-v2 output %q: %w", out, err)
		}
	}
	var keys []string
	for _, o := range res.Contents {
		keys = append(keys, o.Key)
	}
	return keys, nil
}

func (a awsCLI) Copy(ctx context.Context, bucket, src, dst string) error {
	// botocore URL-encodes the key of a string --copy-source itself.
	_, err := a.cmd.run(ctx, "s3api", "copy-object", "--bucket", bucket, "--key", dst, "--copy-source", bucket+"/"+src)
	return err
}

func (a awsCLI) Delete(ctx context.Context, bucket, key string) error {
	_, err := a.cmd.run(ctx, "s3", "rm", "s3://"+bucket+"/"+key)
	return err
}

func (a awsCLI) Presign(ctx context.Context, bucket, key string) (map[string]string, error) {
	out, err := a.cmd.run(ctx, "s3", "presign", "s3://"+bucket+"/"+key, "--expires-in", fmt.Sprint(int(presignExpiry.Seconds())))
	if err != nil {
		return nil, err
	}
	return map[string]string{"": strings.TrimSpace(out)}, nil
}

// scriptClient runs testdata scripts that take an operation and its arguments (boto3 and
// the JavaScript SDK): list prints a JSON array of keys, presign a JSON object of URLs.
type scriptClient struct{ cmd *command }

func (s scriptClient) MakeBucket(ctx context.Context, bucket string) error {
	_, err := s.cmd.run(ctx, "mb", bucket)
	return err
}

func (s scriptClient) Put(ctx context.Context, bucket, key, file string) error {
	_, err := s.cmd.run(ctx, "put", bucket, key, file)
	return err
}

func (s scriptClient) Get(ctx context.Context, bucket, key, file string) error {
	_, err := s.cmd.run(ctx, "get", bucket, key, file)
	return err
}

func (s scriptClient) List(ctx context.Context, bucket, prefix string) ([]string, error) {
	out, err := s.cmd.run(ctx, "list", bucket, prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		return nil, fmt.Errorf("parse list output %q: %w", out, err)
	}
	return keys, nil
}

func (s scriptClient) Copy(ctx context.Context, bucket, src, dst string) error {
	_, err := s.cmd.run(ctx, "copy", bucket, src, dst)
	return err
}

func (s scriptClient) Delete(ctx context.Context, bucket, key string) error {
	_, err := s.cmd.run(ctx, "delete", bucket, key)
	return err
}

func (s scriptClient) Presign(ctx context.Context, bucket, key string) (map[string]string, error) {
	out, err := s.cmd.run(ctx, "presign", bucket, key)
	if err != nil {
		return nil, err
	}
	var urls map[string]string
	if err := json.Unmarshal([]byte(out), &urls); err != nil {
		return nil, fmt.Errorf("parse presign output %q: %w", out, err)
	}
	return urls, nil
}

// newBoto3 runs testdata/boto3_client.py with Debian's python3 and python3-boto3.
func newBoto3(t *testing.T, endpoint string) client {
	t.Helper()
	requireFile(t, "/usr/bin/python3", debianInstall)
	script, err := filepath.Abs(filepath.Join("testdata", "boto3_client.py"))
	if err != nil {
		t.Fatal(err)
	}
	c := newCommand(t, "/usr/bin/python3", append([]string{"PYTHONNOUSERSITE=1"}, awsEnv...)...)
	if _, err := c.run(t.Context(), "-c", "import boto3"); err != nil {
		t.Fatalf("boto3 is missing for /usr/bin/python3: %s\n%v", debianInstall, err)
	}
	c.args = []string{script, endpoint}
	return scriptClient{c}
}

// rclone is Debian's rclone with an s3 remote named "signet" configured from the
// environment. Retries are off so that a failure is not hidden by a retry.
type rclone struct{ cmd *command }

func newRclone(t *testing.T, endpoint string) client {
	t.Helper()
	requireFile(t, "/usr/bin/rclone", debianInstall)
	c := newCommand(t, "/usr/bin/rclone",
		"RCLONE_CONFIG_SIGNET_TYPE=s3", "RCLONE_CONFIG_SIGNET_PROVIDER=Other",
		"RCLONE_CONFIG_SIGNET_ENDPOINT="+endpoint, "RCLONE_CONFIG_SIGNET_REGION="+region,
		"RCLONE_CONFIG_SIGNET_ACCESS_KEY_ID="+dummyKeyID, "RCLONE_CONFIG_SIGNET_SECRET_ACCESS_KEY="+dummySecret,
		"RCLONE_CONFIG_SIGNET_FORCE_PATH_STYLE=true")
	c.env = append(c.env, "RCLONE_CONFIG="+filepath.Join(c.dir, "rclone.conf"))
	c.args = []string{"--retries", "1", "--low-level-retries", "1"}
	return rclone{c}
}

func (r rclone) MakeBucket(ctx context.Context, bucket string) error {
	_, err := r.cmd.run(ctx, "mkdir", "signet:"+bucket)
	return err
}

func (r rclone) Put(ctx context.Context, bucket, key, file string) error {
	_, err := r.cmd.run(ctx, "copyto", file, "signet:"+bucket+"/"+key)
	return err
}

func (r rclone) Get(ctx context.Context, bucket, key, file string) error {
	_, err := r.cmd.run(ctx, "copyto", "signet:"+bucket+"/"+key, file)
	return err
}

func (r rclone) List(ctx context.Context, bucket, prefix string) ([]string, error) {
	// rclone lists "directories": signet:bucket/docs lists with prefix docs/.
	dir := strings.TrimSuffix(prefix, "/")
	out, err := r.cmd.run(ctx, "lsjson", "--files-only", "signet:"+bucket+"/"+dir)
	if err != nil {
		return nil, err
	}
	var entries []struct{ Path string }
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		return nil, fmt.Errorf("parse lsjson output %q: %w", out, err)
	}
	var keys []string
	for _, e := range entries {
		keys = append(keys, dir+"/"+e.Path)
	}
	return keys, nil
}

func (r rclone) Copy(ctx context.Context, bucket, src, dst string) error {
	// Both ends on one remote: rclone copies server-side.
	_, err := r.cmd.run(ctx, "copyto", "signet:"+bucket+"/"+src, "signet:"+bucket+"/"+dst)
	return err
}

func (r rclone) Delete(ctx context.Context, bucket, key string) error {
	_, err := r.cmd.run(ctx, "deletefile", "signet:"+bucket+"/"+key)
	return err
}

func (r rclone) Presign(ctx context.Context, bucket, key string) (map[string]string, error) {
	out, err := r.cmd.run(ctx, "link", "--expire", presignExpiry.String(), "signet:"+bucket+"/"+key)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return map[string]string{"": strings.TrimSpace(lines[len(lines)-1])}, nil
}

// s3cmd is Debian's s3cmd with a config file of its own and path-style addressing.
type s3cmd struct{ cmd *command }

func newS3cmd(t *testing.T, endpoint string) client {
	t.Helper()
	requireFile(t, "/usr/bin/s3cmd", debianInstall)
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := newCommand(t, "/usr/bin/s3cmd")
	cfg := filepath.Join(c.dir, "s3cfg")
	// host_bucket without %(bucket)s: path-style requests.
	text := fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nbucket_location = %s\n",
		dummyKeyID, dummySecret, u.Host, u.Host, region)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c.args = []string{"-c", cfg, "--host=" + u.Host, "--host-bucket=" + u.Host, "--access_key=" + dummyKeyID,
		"--secret_key=" + dummySecret, "--no-ssl", "--region=" + region, "--no-progress"}
	return s3cmd{cmd: c}
}

func (s s3cmd) MakeBucket(ctx context.Context, bucket string) error {
	_, err := s.cmd.run(ctx, "mb", "s3://"+bucket)
	return err
}

func (s s3cmd) Put(ctx context.Context, bucket, key, file string) error {
	_, err := s.cmd.run(ctx, "put", file, "s3://"+bucket+"/"+key)
	return err
}

func (s s3cmd) Get(ctx context.Context, bucket, key, file string) error {
	_, err := s.cmd.run(ctx, "get", "--force", "s3://"+bucket+"/"+key, file)
	return err
}

func (s s3cmd) List(ctx context.Context, bucket, prefix string) ([]string, error) {
	out, err := s.cmd.run(ctx, "ls", "s3://"+bucket+"/"+prefix)
	if err != nil {
		return nil, err
	}
	// "2026-01-02 03:04       100000  s3://bucket/docs/hello world.txt"; "DIR" lines are prefixes.
	var keys []string
	uri := "s3://" + bucket + "/"
	for line := range strings.Lines(out) {
		i := strings.Index(line, uri)
		if i < 0 || strings.Contains(line[:i], "DIR") {
			continue
		}
		keys = append(keys, strings.TrimRight(line[i+len(uri):], "\n"))
	}
	return keys, nil
}

func (s s3cmd) Copy(ctx context.Context, bucket, src, dst string) error {
	_, err := s.cmd.run(ctx, "cp", "s3://"+bucket+"/"+src, "s3://"+bucket+"/"+dst)
	return err
}

func (s s3cmd) Delete(ctx context.Context, bucket, key string) error {
	_, err := s.cmd.run(ctx, "rm", "s3://"+bucket+"/"+key)
	return err
}

func (s s3cmd) Presign(ctx context.Context, bucket, key string) (map[string]string, error) {
	out, err := s.cmd.run(ctx, "signurl", "s3://"+bucket+"/"+key, fmt.Sprintf("+%d", int(presignExpiry.Seconds())))
	if err != nil {
		return nil, err
	}
	return map[string]string{"": strings.TrimSpace(out)}, nil
}

// goSDK is aws-sdk-go-v2's S3 client. Files over goSDKPartSize go up as a multipart upload
// of goSDKPartSize parts, the defaults of the SDK's upload manager (which this module does
// not depend on), one part at a time.
type goSDK struct{ s3 *s3.Client }

const goSDKPartSize = 5 << 20

func newGoSDK(t *testing.T, endpoint string) client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return goSDK{s3.New(s3.Options{
		BaseEndpoint:     aws.String(endpoint),
		Region:           region,
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(dummyKeyID, dummySecret, ""),
		HTTPClient:       &http.Client{Transport: tr},
		RetryMaxAttempts: 1,
	})}
}

func (g goSDK) MakeBucket(ctx context.Context, bucket string) error {
	_, err := g.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket})
	return err
}

func (g goSDK) Put(ctx context.Context, bucket, key, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() <= goSDKPartSize {
		_, err := g.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: f})
		return err
	}
	up, err := g.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	for n, off := int32(1), int64(0); off < fi.Size(); n, off = n+1, off+goSDKPartSize {
		body := io.NewSectionReader(f, off, min(goSDKPartSize, fi.Size()-off))
		out, err := g.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId, PartNumber: aws.Int32(n), Body: body})
		if err != nil {
			_, aerr := g.s3.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId})
			return errors.Join(fmt.Errorf("upload part %d: %w", n, err), aerr)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
	}
	_, err = g.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}

func (g goSDK) Get(ctx context.Context, bucket, key, file string) error {
	out, err := g.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	return writeFile(file, out.Body)
}

func (g goSDK) List(ctx context.Context, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(g.s3, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

func (g goSDK) Copy(ctx context.Context, bucket, src, dst string) error {
	// CopySource is sent as given: the caller URL-encodes the key.
	source := bucket + "/" + (&url.URL{Path: src}).EscapedPath()
	_, err := g.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: &dst, CopySource: &source})
	return err
}

func (g goSDK) Delete(ctx context.Context, bucket, key string) error {
	_, err := g.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
	return err
}

func (g goSDK) Presign(ctx context.Context, bucket, key string) (map[string]string, error) {
	req, err := s3.NewPresignClient(g.s3).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key}, s3.WithPresignExpires(presignExpiry))
	if err != nil {
		return nil, err
	}
	return map[string]string{"": req.URL}, nil
}

// minioGo is minio-go v7 with its defaults, path-style, retries off.
type minioGo struct{ mc *minio.Client }

func newMinioGo(t *testing.T, endpoint string) client {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	mc, err := minio.New(u.Host, &minio.Options{
		Creds:        miniocreds.NewStaticV4(dummyKeyID, dummySecret, ""),
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		Transport:    tr,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return minioGo{mc}
}

func (m minioGo) MakeBucket(ctx context.Context, bucket string) error {
	return m.mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region})
}

func (m minioGo) Put(ctx context.Context, bucket, key, file string) error {
	_, err := m.mc.FPutObject(ctx, bucket, key, file, minio.PutObjectOptions{})
	return err
}

func (m minioGo) Get(ctx context.Context, bucket, key, file string) error {
	return m.mc.FGetObject(ctx, bucket, key, file, minio.GetObjectOptions{})
}

func (m minioGo) List(ctx context.Context, bucket, prefix string) ([]string, error) {
	var keys []string
	for o := range m.mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		keys = append(keys, o.Key)
	}
	return keys, nil
}

func (m minioGo) Copy(ctx context.Context, bucket, src, dst string) error {
	_, err := m.mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: dst}, minio.CopySrcOptions{Bucket: bucket, Object: src})
	return err
}

func (m minioGo) Delete(ctx context.Context, bucket, key string) error {
	return m.mc.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
}

func (m minioGo) Presign(ctx context.Context, bucket, key string) (map[string]string, error) {
	u, err := m.mc.PresignedGetObject(ctx, bucket, key, presignExpiry, nil)
	if err != nil {
		return nil, err
	}
	return map[string]string{"": u.String()}, nil
}

// sdkJSPackages are the npm packages of the JavaScript SDK client, at the versions the
// Makefile's tools target installs.
var sdkJSPackages = []struct{ name, version string }{
	{"@aws-sdk/client-s3", "3.1175.0"},
	{"@aws-sdk/lib-storage", "3.1175.0"},
	{"@aws-sdk/s3-request-presigner", "3.1169.0"},
}

// newJSSDK runs testdata/sdkjs_client.mjs with node, from a temporary directory, with
// NODE_PATH set to the node_modules holding sdkJSPackages.
func newJSSDK(t *testing.T, endpoint string) client {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is missing: apt-get install -y --no-install-recommends nodejs npm (.ci/run installs them): %v", err)
	}
	modules := sdkJSModules(t)
	script, err := os.ReadFile(filepath.Join("testdata", "sdkjs_client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	c := newCommand(t, node, "NODE_PATH="+modules, "S3_ENDPOINT="+endpoint,
		"AWS_ACCESS_KEY_ID="+dummyKeyID, "AWS_SECRET_ACCESS_KEY="+dummySecret, "AWS_REGION="+region,
		"AWS_EC2_METADATA_DISABLED=true")
	c.env[0] = "PATH=" + filepath.Dir(node) + ":/usr/bin:/bin"
	path := filepath.Join(c.dir, "sdkjs_client.mjs")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		t.Fatal(err)
	}
	c.args = []string{path}
	return scriptClient{c}
}

// sdkJSModules returns the node_modules directory holding sdkJSPackages: $SIGNET_NODE_MODULES,
// else <tools>/node/node_modules, where `make tools` installs them. It installs them there
// with npm when they are missing or at other versions.
func sdkJSModules(t *testing.T) string {
	t.Helper()
	var specs []string
	for _, p := range sdkJSPackages {
		specs = append(specs, p.name+"@"+p.version)
	}
	install := "run `make tools`, or npm install --prefix <dir> " + strings.Join(specs, " ") + " and set SIGNET_NODE_MODULES=<dir>/node_modules"
	if d := os.Getenv("SIGNET_NODE_MODULES"); d != "" {
		if missing := missingJSPackages(d); len(missing) > 0 {
			t.Fatalf("SIGNET_NODE_MODULES=%s lacks %s: %s", d, strings.Join(missing, ", "), install)
		}
		return d
	}
	tools, err := testenv.ToolsDir()
	if err != nil {
		t.Fatalf("find the tools directory: %v: %s", err, install)
	}
	prefix := filepath.Join(tools, "node")
	modules := filepath.Join(prefix, "node_modules")
	missing := missingJSPackages(modules)
	if len(missing) == 0 {
		return modules
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("%s lacks %s and npm is missing: apt-get install -y --no-install-recommends nodejs npm, then %s", modules, strings.Join(missing, ", "), install)
	}
	t.Logf("installing %s into %s with npm (`make tools` does this ahead of time)", strings.Join(missing, ", "), prefix)
	args := append([]string{"install", "--prefix", prefix, "--no-audit", "--no-fund"}, specs...)
	// npm gets this process's environment: it may need its proxy and CA settings.
	cmd := exec.CommandContext(t.Context(), npm, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm %s: %v\n%s\n%s", strings.Join(args, " "), err, out, install)
	}
	if missing := missingJSPackages(modules); len(missing) > 0 {
		t.Fatalf("after npm install, %s still lacks %s: %s", modules, strings.Join(missing, ", "), install)
	}
	return modules
}

// missingJSPackages lists the sdkJSPackages not installed in modules at their version.
func missingJSPackages(modules string) []string {
	var missing []string
	for _, p := range sdkJSPackages {
		b, err := os.ReadFile(filepath.Join(modules, p.name, "package.json"))
		var pkg struct{ Version string }
		if err != nil || json.Unmarshal(b, &pkg) != nil || pkg.Version != p.version {
			missing = append(missing, p.name+"@"+p.version)
		}
	}
	return missing
}

// writeFile streams r into a new file.
func writeFile(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
