package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// clientsEnv is signet with two client identities in front of versitygw:
// web may read photos; batch may read and write photos and logs-*.
func clientsEnv(t *testing.T) (*env, *httptest.Server) {
	t.Helper()
	e := newEnv(t, "")
	e.mkBuckets(t, "photos", "logs-1", "private")
	h := newHandler(t, fmt.Sprintf(`
clients:
  - {name: web, access_key_id: web-local, secret_access_key: web-local-secret, buckets: [photos], access: read-only}
  - {name: batch, access_key_id: batch-local, secret_access_key: batch-local-secret, buckets: [photos, "logs-*"]}
accounts:
  gw: {endpoint: %s, credentials: {access_key_id: %s, secret_access_key: %s}}
buckets:
  - {name: photos, account: gw}
  - {name: private, account: gw}
  - {name: "logs-*", account: gw}
`, e.gw.Endpoint, e.gw.AccessKey, e.gw.SecretKey))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return e, srv
}

func clientS3(endpoint, id, secret string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{}},
		Retryer:     aws.NopRetryer{},
	})
}

func TestClientIdentities(t *testing.T) {
	e, srv := clientsEnv(t)
	ctx := t.Context()
	web := clientS3(srv.URL, "web-local", "web-local-secret")
	batch := clientS3(srv.URL, "batch-local", "batch-local-secret")

	put(t, batch, "photos", "p.jpg", []byte("photo"))
	put(t, batch, "logs-1", "l.txt", []byte("log"))
	if got := get(t, web, "photos", "p.jpg"); string(got) != "photo" {
		t.Errorf("web read %q", got)
	}
	lb, err := web.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 1 || *lb.Buckets[0].Name != "photos" {
		t.Errorf("web's ListBuckets shows %v (%v), want only photos", lb, err)
	}

	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"read-only client writes", func() error {
			_, err := web.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("x"), Body: strings.NewReader("x")})
			return err
		}, "AccessDenied"},
		{"client reads a bucket it may not use", func() error {
			_, err := web.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("logs-1"), Key: aws.String("l.txt")})
			return err
		}, "AccessDenied"},
		{"copy from a bucket the client may not use", func() error {
			_, err := batch.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("photos"), Key: aws.String("leak"), CopySource: aws.String("private/secret.txt")})
			return err
		}, "AccessDenied"},
		{"part copy from a bucket the client may not use", func() error {
			_, err := batch.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("photos"), Key: aws.String("leak"), UploadId: aws.String("u"), PartNumber: aws.Int32(1), CopySource: aws.String("private/secret.txt")})
			return err
		}, "AccessDenied"},
		{"no client may use an unlisted bucket", func() error {
			_, err := batch.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("private")})
			return err
		}, "AccessDenied"},
		{"wrong secret", func() error {
			_, err := clientS3(srv.URL, "web-local", "wrong").GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("p.jpg")})
			return err
		}, "SignatureDoesNotMatch"},
		{"unknown key", func() error {
			_, err := clientS3(srv.URL, "nobody", "x").GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("p.jpg")})
			return err
		}, "InvalidAccessKeyId"},
		{"real upstream keys are worthless here", func() error {
			_, err := clientS3(srv.URL, e.gw.AccessKey, e.gw.SecretKey).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("p.jpg")})
			return err
		}, "InvalidAccessKeyId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := apiCode(tt.call()); code != tt.code {
				t.Errorf("got %q, want %s", code, tt.code)
			}
		})
	}

	t.Run("unsigned request", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/photos/p.jpg")
		if err != nil {
			t.Fatal(err)
		}
		if e := readError(t, resp); resp.StatusCode != 403 || e.Code != "AccessDenied" {
			t.Errorf("%d %+v", resp.StatusCode, e)
		}
	})

	t.Run("20-minute clock skew", func(t *testing.T) {
		for _, skew := range []time.Duration{-20 * time.Minute, 20 * time.Minute} {
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/photos/p.jpg", nil)
			req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			creds := aws.Credentials{AccessKeyID: "web-local", SecretAccessKey: "web-local-secret"}
			if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now().Add(skew)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if e := readError(t, resp); resp.StatusCode != 403 || e.Code != "RequestTimeTooSkewed" {
				t.Errorf("skew %s: %d %+v", skew, resp.StatusCode, e)
			}
		}
	})

	t.Run("presigned URLs: valid and expired", func(t *testing.T) {
		ps, err := s3.NewPresignClient(web).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("p.jpg")}, s3.WithPresignExpires(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(ps.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "photo" {
			t.Errorf("valid presign: %d %q", resp.StatusCode, b)
		}
		// Signed 10 minutes ago for 1 minute.
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/photos/p.jpg?X-Amz-Expires=60", nil)
		u, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(ctx,
			aws.Credentials{AccessKeyID: "web-local", SecretAccessKey: "web-local-secret"}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now().Add(-10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		resp, err = http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if e := readError(t, resp); resp.StatusCode != 403 || e.Code != "AccessDenied" || !strings.Contains(e.Message, "expired") {
			t.Errorf("expired presign: %d %+v", resp.StatusCode, e)
		}
	})

	t.Run("chunk-signed uploads verify, and an altered chunk signature fails", func(t *testing.T) {
		payload := bytes.Repeat([]byte("chunky "), 40000)
		mc := func(tr http.RoundTripper) *minio.Client {
			c, err := minio.New(strings.TrimPrefix(srv.URL, "http://"), &minio.Options{
				Creds: miniocreds.NewStaticV4("batch-local", "batch-local-secret", ""), Region: "us-east-1", Transport: tr,
			})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		if _, err := mc(&http.Transport{}).PutObject(ctx, "logs-1", "chunked", bytes.NewReader(payload), int64(len(payload)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("chunk-signed put: %v", err)
		}
		if got, _ := os.ReadFile(filepath.Join(e.gw.DataDir, "logs-1", "chunked")); !bytes.Equal(got, payload) {
			t.Errorf("stored %d bytes", len(got))
		}
		_, err := mc(alterChunkSignature{&http.Transport{}}).PutObject(ctx, "logs-1", "altered", bytes.NewReader(payload), int64(len(payload)), minio.PutObjectOptions{})
		if code := minio.ToErrorResponse(err).Code; code != "SignatureDoesNotMatch" {
			t.Errorf("altered chunk signature: %v", err)
		}
		if _, err := os.Stat(filepath.Join(e.gw.DataDir, "logs-1", "altered")); err == nil {
			t.Error("an upload with a forged chunk was stored")
		}
	})
}

// alterChunkSignature corrupts the second chunk signature of a chunk-signed body in flight
// (a fault injected between client and signet).
type alterChunkSignature struct{ rt http.RoundTripper }

var chunkSigRE = regexp.MustCompile(`chunk-signature=([0-9a-f]{64})`)

func (a alterChunkSignature) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		n := 0
		b = chunkSigRE.ReplaceAllFunc(b, func(m []byte) []byte {
			if n++; n == 2 {
				return []byte("chunk-signature=" + strings.Repeat("0", 64))
			}
			return m
		})
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return a.rt.RoundTrip(r)
}

// TestClientIdentitiesAWSCLI: the AWS CLI, configured with a client's local keys, works on
// its bucket, is refused elsewhere, and a wrong secret fails.
func TestClientIdentitiesAWSCLI(t *testing.T) {
	if _, err := os.Stat("/usr/bin/aws"); err != nil {
		t.Fatal("the AWS CLI is needed: apt-get install awscli")
	}
	_, srv := clientsEnv(t)
	file := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(file, []byte("from the cli"), 0o600)
	aws := func(id, secret string, args ...string) (string, error) {
		cmd := exec.Command("/usr/bin/aws", append([]string{"--endpoint-url", srv.URL, "--region", "us-east-1"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_MAX_ATTEMPTS=1"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := aws("batch-local", "batch-local-secret", "s3", "cp", file, "s3://logs-1/cli.txt"); err != nil {
		t.Fatalf("cp to an allowed bucket: %v %s", err, out)
	}
	if out, err := aws("batch-local", "batch-local-secret", "s3", "cp", "s3://logs-1/cli.txt", "-"); err != nil || out != "from the cli" {
		t.Errorf("cp back: %v %q", err, out)
	}
	if out, err := aws("web-local", "web-local-secret", "s3", "cp", file, "s3://photos/cli.txt"); err == nil || !strings.Contains(out, "AccessDenied") {
		t.Errorf("read-only client writing: %v %s", err, out)
	}
	if out, err := aws("batch-local", "not-the-secret", "s3", "ls", "s3://logs-1/"); err == nil || !strings.Contains(out, "SignatureDoesNotMatch") {
		t.Errorf("wrong secret: %v %s", err, out)
	}
}

// TestClientWithPrefixesDeletes: a prefix-scoped client's DeleteObjects, whose body signet
// reads to check the keys, still verifies against the client's signed payload hash.
func TestClientWithPrefixesDeletes(t *testing.T) {
	e := newEnv(t, "")
	e.mkBuckets(t, "photos")
	h := newHandler(t, fmt.Sprintf(`
clients:
  - {name: batch, access_key_id: batch-local, secret_access_key: batch-local-secret, buckets: [photos], prefixes: [incoming/]}
accounts:
  gw: {endpoint: %s, credentials: {access_key_id: %s, secret_access_key: %s}}
buckets:
  - {name: photos, account: gw}
`, e.gw.Endpoint, e.gw.AccessKey, e.gw.SecretKey))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := clientS3(srv.URL, "batch-local", "batch-local-secret")
	put(t, c, "photos", "incoming/a", []byte("a"))
	out, err := c.DeleteObjects(t.Context(), &s3.DeleteObjectsInput{Bucket: aws.String("photos"),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("incoming/a")}}}})
	if err != nil || len(out.Deleted) != 1 {
		t.Fatalf("delete inside the prefix: %v %v", out, err)
	}
	_, err = c.DeleteObjects(t.Context(), &s3.DeleteObjectsInput{Bucket: aws.String("photos"),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("elsewhere/b")}}}})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("delete outside the prefix: %v", err)
	}
	// A copy reads its source: one outside the client's prefixes is refused, one inside works.
	put(t, e.direct(), "photos", "private.txt", []byte("secret"))
	_, err = c.CopyObject(t.Context(), &s3.CopyObjectInput{Bucket: aws.String("photos"), Key: aws.String("incoming/leak"), CopySource: aws.String("photos/private.txt")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("copy from outside the prefix: %v", err)
	}
	put(t, c, "photos", "incoming/b", []byte("b"))
	if _, err := c.CopyObject(t.Context(), &s3.CopyObjectInput{Bucket: aws.String("photos"), Key: aws.String("incoming/c"), CopySource: aws.String("photos/incoming/b")}); err != nil {
		t.Errorf("copy inside the prefix: %v", err)
	}
}

// TestClientIdentityChunkSignedChecksum: a client identity's chunk-signed upload with a
// signed checksum trailer (minio-go) is verified, chunk and trailer signatures with the
// client's key, and reaches the upstream re-framed with the checksum, which it stores.
func TestClientIdentityChunkSignedChecksum(t *testing.T) {
	e, srv := clientsEnv(t)
	mc, err := minio.New(strings.TrimPrefix(srv.URL, "http://"), &minio.Options{
		Creds: miniocreds.NewStaticV4("batch-local", "batch-local-secret", ""), Region: "us-east-1", TrailingHeaders: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("signed!"), 100000)
	if _, err := mc.PutObject(t.Context(), "photos", "signed-crc32c", bytes.NewReader(payload), int64(len(payload)),
		minio.PutObjectOptions{AutoChecksum: minio.ChecksumCRC32C, Checksum: minio.ChecksumCRC32C, DisableMultipart: true}); err != nil {
		t.Fatal(err)
	}
	head, err := e.direct().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("photos"), Key: aws.String("signed-crc32c"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(head.ChecksumCRC32C), checksumOf(types.ChecksumAlgorithmCrc32c, payload); got != want {
		t.Errorf("upstream stored CRC32C %q, want the client's %q", got, want)
	}
}
