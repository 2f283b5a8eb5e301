package proxy_test

import (
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/internal/testenv"
	"github.com/signet-proxy/signet/proxy"
)

// env is signet in front of a real versitygw.
type env struct {
	gw      *testenv.VersityGW
	handler *proxy.Handler
	signet  *httptest.Server
	s3      *s3.Client
}

// routesYAML are the bucket routes every integration test uses.
const routesYAML = `
buckets:
  - {name: alpha, account: gw}
  - {name: beta, account: gw}
  - {name: renamed, account: gw, upstream_bucket: real-bucket}
  - {name: frozen, account: gw, access: read-only, upstream_bucket: alpha}
  - {name: "logs-*", account: gw}
`

// newHandler builds a proxy.Handler from YAML through the real config loader.
func newHandler(t *testing.T, yaml string) *proxy.Handler {
	t.Helper()
	return newHandlerWith(t, yaml)
}

// newHandlerWith is newHandler with handler options.
func newHandlerWith(t *testing.T, yaml string, optFns ...func(*proxy.Options)) *proxy.Handler {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	table, err := proxy.Setup(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { table.Close() })
	opts := proxy.Options{Logger: slog.New(slog.NewTextHandler(secretScanner(t, cfg), nil))}
	for _, fn := range optFns {
		fn(&opts)
	}
	return proxy.New(table, opts)
}

// secretScanner passes the log to the test's output and, when the test ends, fails it if
// any secret, signature or credential scope was logged.
func secretScanner(t *testing.T, cfg *config.Config) io.Writer {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	forbidden := append(logLeaks(), "dummy/")
	for _, s := range cfg.Secrets() {
		if len(s) >= 8 { // placeholders like "b" match anything
			forbidden = append(forbidden, s)
		}
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range forbidden {
			if bytes.Contains(buf.Bytes(), []byte(f)) {
				t.Errorf("the log contains %q", f)
			}
		}
	})
	return writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		buf.Write(p)
		mu.Unlock()
		return t.Output().Write(p)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// newEnv starts versitygw and signet in front of it, signing with secret.
func newEnv(t *testing.T, secret string) *env {
	t.Helper()
	return newEnvOn(t, testenv.StartVersityGW(t), secret)
}

// newEnvOn is newEnv in front of gw, trusting its certificate when it serves HTTPS.
func newEnvOn(t *testing.T, gw *testenv.VersityGW, secret string) *env {
	t.Helper()
	if secret == "" {
		secret = gw.SecretKey
	}
	h := newHandlerWith(t, fmt.Sprintf(`
accounts:
  gw:
    endpoint: %s
    region: %s
    credentials: {access_key_id: %s, secret_access_key: %q}
%s`, gw.Endpoint, gw.Region, gw.AccessKey, secret, routesYAML), func(o *proxy.Options) {
		if gw.RootCAs != nil {
			tr := proxy.NewTransport(config.Timeouts{})
			tr.TLSClientConfig = &tls.Config{RootCAs: gw.RootCAs}
			t.Cleanup(tr.CloseIdleConnections)
			o.Transport = tr
		}
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{gw: gw, handler: h, signet: srv, s3: newS3Client(srv.URL)}
}

// newS3Client is an aws-sdk-go-v2 S3 client with dummy credentials, as an app next to
// signet would have.
func newS3Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("dummy", "dummy", ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{}},
	})
}

// direct is an S3 client straight to versitygw with its real keys, to check what signet stored.
func (e *env) direct() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(e.gw.Endpoint),
		Region:       e.gw.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(e.gw.AccessKey, e.gw.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.gw.RootCAs}}},
	})
}

func (e *env) mkBuckets(t *testing.T, names ...string) {
	t.Helper()
	for _, b := range names {
		if _, err := e.direct().CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("create %s upstream: %v", b, err)
		}
	}
}

func put(t *testing.T, c *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("put %s/%q: %v", bucket, key, err)
	}
}

func get(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s/%q: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func apiCode(err error) string {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return ae.ErrorCode()
	}
	return ""
}

func TestObjectOperations(t *testing.T) {
	e := newEnv(t, "")
	ctx := t.Context()
	c := e.s3

	// Bucket lifecycle through signet, on a glob route.
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("logs-2026")}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("logs-2026")}); err != nil {
		t.Fatalf("head bucket: %v", err)
	}
	e.mkBuckets(t, "alpha", "beta", "real-bucket")

	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("list buckets: %v", err)
	}
	var names []string
	for _, b := range lb.Buckets {
		names = append(names, *b.Name)
	}
	// Exact routes, plus the upstream buckets that the glob matches; never real-bucket,
	// which clients know as "renamed".
	if want := []string{"alpha", "beta", "frozen", "logs-2026", "renamed"}; !slices.Equal(names, want) {
		t.Errorf("ListBuckets = %v, want %v", names, want)
	}

	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("logs-2026")}); err != nil {
		t.Fatalf("delete bucket: %v", err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("logs-2026")}); err == nil {
		t.Fatal("bucket still there after delete")
	}

	t.Run("put get head delete", func(t *testing.T) {
		body := []byte("hello through signet")
		put(t, c, "alpha", "greeting.txt", body)
		if got := get(t, c, "alpha", "greeting.txt"); !bytes.Equal(got, body) {
			t.Errorf("got %q", got)
		}
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("alpha"), Key: aws.String("greeting.txt")})
		if err != nil || aws.ToInt64(h.ContentLength) != int64(len(body)) {
			t.Fatalf("head = %v, %v", h, err)
		}
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("alpha"), Key: aws.String("greeting.txt")}); err != nil {
			t.Fatal(err)
		}
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("alpha"), Key: aws.String("greeting.txt")})
		if err == nil {
			t.Fatal("object still there after delete")
		}
	})

	t.Run("empty object", func(t *testing.T) {
		put(t, c, "alpha", "empty", nil)
		if got := get(t, c, "alpha", "empty"); len(got) != 0 {
			t.Errorf("got %d bytes", len(got))
		}
	})

	t.Run("renamed bucket lands upstream under its real name", func(t *testing.T) {
		put(t, c, "renamed", "r.txt", []byte("renamed"))
		if got := get(t, e.direct(), "real-bucket", "r.txt"); string(got) != "renamed" {
			t.Errorf("upstream has %q", got)
		}
	})

	t.Run("ranged and conditional get", func(t *testing.T) {
		put(t, c, "alpha", "digits", []byte("0123456789"))
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("alpha"), Key: aws.String("digits"), Range: aws.String("bytes=2-5")})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(b) != "2345" || aws.ToString(out.ContentRange) != "bytes 2-5/10" {
			t.Errorf("range got %q %q", b, aws.ToString(out.ContentRange))
		}
		etag := aws.ToString(out.ETag)

		// 304 and 412 with plain HTTP, where the status is visible.
		for _, tc := range []struct {
			header, value string
			want          int
		}{
			{"If-None-Match", etag, http.StatusNotModified},
			{"If-Match", `"0000"`, http.StatusPreconditionFailed},
			{"If-Match", etag, http.StatusOK},
		} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.signet.URL+"/alpha/digits", nil)
			req.Header.Set(tc.header, tc.value)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: %s = %d, want %d", tc.header, tc.value, resp.StatusCode, tc.want)
			}
		}
	})

	t.Run("list objects v2 prefix delimiter pagination", func(t *testing.T) {
		for _, k := range []string{"dir/a", "dir/b", "dir/c", "dir/sub/d", "other"} {
			put(t, c, "beta", k, []byte(k))
		}
		var keys []string
		var pages int
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("beta"), Prefix: aws.String("dir/"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)})
		var prefixes []string
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, o := range out.Contents {
				keys = append(keys, *o.Key)
			}
			for _, cp := range out.CommonPrefixes {
				prefixes = append(prefixes, *cp.Prefix)
			}
		}
		if !slices.Equal(keys, []string{"dir/a", "dir/b", "dir/c"}) || !slices.Equal(prefixes, []string{"dir/sub/"}) || pages < 2 {
			t.Errorf("keys %v prefixes %v in %d pages", keys, prefixes, pages)
		}
	})

	t.Run("delete objects", func(t *testing.T) {
		put(t, c, "beta", "del/1", []byte("1"))
		put(t, c, "beta", "del/2", []byte("2"))
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("beta"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("del/1")}, {Key: aws.String("del/2")}}}})
		if err != nil || len(out.Deleted) != 2 {
			t.Fatalf("delete objects: %v %v", out, err)
		}
		l, _ := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("beta"), Prefix: aws.String("del/")})
		if len(l.Contents) != 0 {
			t.Errorf("left: %d", len(l.Contents))
		}
	})

	t.Run("copy object across routed buckets of one upstream", func(t *testing.T) {
		put(t, c, "alpha", "src key+1", []byte("copy me"))
		_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("renamed"), Key: aws.String("dst"), CopySource: aws.String("alpha/src%20key%2B1")})
		if err != nil {
			t.Fatal(err)
		}
		if got := get(t, e.direct(), "real-bucket", "dst"); string(got) != "copy me" {
			t.Errorf("copied %q", got)
		}
		// From the renamed bucket: the source must be rewritten to its upstream name.
		_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("alpha"), Key: aws.String("back"), CopySource: aws.String("/renamed/dst")})
		if err != nil {
			t.Fatal(err)
		}
		if got := get(t, c, "alpha", "back"); string(got) != "copy me" {
			t.Errorf("copied back %q", got)
		}
	})

	t.Run("multipart upload", func(t *testing.T) {
		key := aws.String("multi/part")
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("alpha"), Key: key})
		if err != nil {
			t.Fatal(err)
		}
		part1 := bytes.Repeat([]byte("a"), 5<<20)
		part2 := []byte("tail")
		var parts []types.CompletedPart
		for i, p := range [][]byte{part1, part2} {
			up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("alpha"), Key: key, UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
		}
		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("alpha"), Key: key, UploadId: cr.UploadId})
		if err != nil || len(lp.Parts) != 2 {
			t.Fatalf("list parts: %v %v", lp, err)
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("alpha"), Key: key, UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			t.Fatal(err)
		}
		if got := get(t, c, "alpha", *key); !bytes.Equal(got, append(part1, part2...)) {
			t.Errorf("multipart object is %d bytes", len(got))
		}

		ab, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("alpha"), Key: aws.String("multi/aborted")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("alpha"), Key: aws.String("multi/aborted"), UploadId: ab.UploadId}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("alpha"), Key: aws.String("multi/aborted"), UploadId: ab.UploadId}); apiCode(err) != "NoSuchUpload" {
			t.Errorf("list parts of an aborted upload: %v", err)
		}
	})

	t.Run("metadata round trip keeps lowercase names", func(t *testing.T) {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("alpha"), Key: aws.String("meta"), Body: strings.NewReader("m"),
			ContentType: aws.String("text/x-signet"), CacheControl: aws.String("max-age=60"),
			Metadata: map[string]string{"colour": "blue", "long": strings.Repeat("x", 1500)},
		})
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("alpha"), Key: aws.String("meta")})
		if err != nil {
			t.Fatal(err)
		}
		if h.Metadata["colour"] != "blue" || len(h.Metadata["long"]) != 1500 || aws.ToString(h.ContentType) != "text/x-signet" || aws.ToString(h.CacheControl) != "max-age=60" {
			t.Errorf("metadata %v type %q cache %q", h.Metadata, aws.ToString(h.ContentType), aws.ToString(h.CacheControl))
		}
		// Straight from the backend, with no SDK between: the name is stored lowercase.
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, e.signet.URL+"/alpha/meta", nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, ok := resp.Header["X-Amz-Meta-Colour"]; !ok {
			t.Errorf("no x-amz-meta-colour in %v", resp.Header)
		}
	})

	t.Run("content-md5 is checked end to end", func(t *testing.T) {
		body := "integrity"
		sum := md5.Sum([]byte(body))
		for _, tc := range []struct {
			name, md5 string
			want      int
		}{
			{"right", base64.StdEncoding.EncodeToString(sum[:]), http.StatusOK},
			{"wrong", base64.StdEncoding.EncodeToString(make([]byte, 16)), http.StatusBadRequest},
		} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPut, e.signet.URL+"/alpha/md5-"+tc.name, strings.NewReader(body))
			req.Header.Set("Content-MD5", tc.md5)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s md5: %d %s", tc.name, resp.StatusCode, msg)
			}
			if tc.want != http.StatusOK && !strings.Contains(string(msg), "BadDigest") {
				t.Errorf("%s md5: %s", tc.name, msg)
			}
		}
		if _, err := os.Stat(filepath.Join(e.gw.DataDir, "alpha", "md5-wrong")); err == nil {
			t.Error("object with a wrong Content-MD5 was stored")
		}
	})

	t.Run("plain unsigned http and virtual-hosted style", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, e.signet.URL+"/alpha/plain", strings.NewReader("plain body"))
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("plain put: %v %v", resp, err)
		}
		resp.Body.Close()
		// bucket.localhost:PORT addressing, without DNS: dial signet, send the Host.
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, e.signet.URL+"/plain", nil)
		req.Host = "alpha.localhost:" + strings.Split(e.signet.Listener.Addr().String(), ":")[1]
		resp, err = http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "plain body" {
			t.Errorf("virtual-hosted get: %d %q", resp.StatusCode, b)
		}
	})
}

// TestAwkwardKeys round-trips keys that break naive signers, and checks each one landed
// upstream under exactly its name.
func TestAwkwardKeys(t *testing.T) {
	e := newEnv(t, "")
	e.mkBuckets(t, "alpha")
	long := strings.Repeat("k", 255) + "/" + strings.Repeat("l", 255) + "/" + strings.Repeat("m", 255) + "/" + strings.Repeat("n", 254) + "/x"
	if len(long) != 1024 {
		t.Fatalf("long key is %d bytes", len(long))
	}
	keys := []struct{ name, key string }{
		{"space", "with space"},
		{"plus", "plus+sign"},
		{"percent", "percent%20literal"},
		{"tilde", "tilde~x"},
		{"equals and ampersand", "eq=1&amp=2"},
		{"colon and at", "colon:at@here"},
		{"shell characters", "$dollar,comma;semi!bang'quote(paren)*star"},
		{"unicode", "ключ/日本語/emoji-🙂"},
		{"double slash", "dd/a//b"},
		{"leading slash", "/leading"},
		{"1024 bytes", long},
	}
	for _, tc := range keys {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte("key:" + tc.key)
			put(t, e.s3, "alpha", tc.key, body)
			if got := get(t, e.s3, "alpha", tc.key); !bytes.Equal(got, body) {
				t.Errorf("through signet: %q", got)
			}
			if got := get(t, e.direct(), "alpha", tc.key); !bytes.Equal(got, body) {
				t.Errorf("from the backend: %q", got)
			}
		})
	}
	// Listing returns the keys as they were written.
	out, err := e.s3.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("alpha"), Prefix: aws.String("plus")})
	if err != nil || len(out.Contents) != 1 || *out.Contents[0].Key != "plus+sign" {
		t.Errorf("list: %v %v", out, err)
	}
}

// TestWrongSecretIsRejected proves the backend really checks signet's signatures.
func TestWrongSecretIsRejected(t *testing.T) {
	e := newEnv(t, "not-the-secret")
	e.mkBuckets(t, "alpha")
	_, err := e.s3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if apiCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("put with a wrong secret: %v", err)
	}
	_, err = e.s3.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k")})
	if apiCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("get with a wrong secret: %v", err)
	}
}

// TestUpstreamUnreachable: a dead endpoint is a 502 that names it.
func TestUpstreamUnreachable(t *testing.T) {
	dead := testenv.FreeAddr(t)
	h := newHandler(t, fmt.Sprintf(`
accounts:
  gw: {endpoint: "http://%s", credentials: {access_key_id: a, secret_access_key: b}}
%s`, dead, routesYAML))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/alpha/k")
	if err != nil {
		t.Fatal(err)
	}
	e := readError(t, resp)
	if resp.StatusCode != http.StatusBadGateway || e.Code != "BadGateway" || !strings.Contains(e.Message, dead) {
		t.Errorf("%d %+v", resp.StatusCode, e)
	}
}

type s3ErrorBody struct {
	Code, Message, Resource, RequestId string
}

func readError(t *testing.T, resp *http.Response) s3ErrorBody {
	t.Helper()
	defer resp.Body.Close()
	var e s3ErrorBody
	b, _ := io.ReadAll(resp.Body)
	if err := xml.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an S3 XML error (%d): %q", resp.StatusCode, b)
	}
	if e.RequestId == "" {
		t.Errorf("no RequestId in %q", b)
	}
	return e
}

// logLeaks are strings that only a leaked credential puts in a log: SigV4 parts, session
// token headers, JWTs (MinIO's and R2's session tokens are JWTs; R2's locally minted tokens
// are base64 of "jwt/...", which starts "and0L").
func logLeaks() []string {
	return []string{"Signature=", "Credential=", "X-Amz-Security-Token", "eyJ", "and0L"}
}

// TestListBucketsPaging: prefix, max-buckets and continuation-token apply to the merged list
// of exact routes and upstream buckets that globs match; Owner and BucketRegion are the
// upstream's.
func TestListBucketsPaging(t *testing.T) {
	e := newEnv(t, "")
	ctx := t.Context()
	var logs []string
	for i := range 7 {
		logs = append(logs, fmt.Sprintf("logs-%d", i))
	}
	e.mkBuckets(t, append([]string{"alpha", "beta", "real-bucket", "unrouted"}, logs...)...)
	direct, err := e.direct().ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string{"alpha", "beta", "frozen"}, logs...)
	all = append(all, "renamed")
	tests := []struct {
		name   string
		prefix string
		max    int32
		want   []string
	}{
		{name: "everything, no paging", want: all},
		{name: "pages of 3", max: 3, want: all},
		{name: "pages of 1", max: 1, want: all},
		{name: "prefix", prefix: "logs-", want: logs},
		{name: "prefix, pages of 2", prefix: "logs-", max: 2, want: logs},
		{name: "prefix matching nothing", prefix: "zzz", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &s3.ListBucketsInput{}
			if tt.prefix != "" {
				in.Prefix = aws.String(tt.prefix)
			}
			if tt.max > 0 {
				in.MaxBuckets = aws.Int32(tt.max)
			}
			var names []string
			pages := 0
			for p := s3.NewListBucketsPaginator(e.s3, in); p.HasMorePages(); {
				out, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if tt.max > 0 && len(out.Buckets) > int(tt.max) {
					t.Errorf("a page of %d buckets, max %d", len(out.Buckets), tt.max)
				}
				if aws.ToString(out.Owner.ID) != aws.ToString(direct.Owner.ID) {
					t.Errorf("Owner %q, upstream's %q", aws.ToString(out.Owner.ID), aws.ToString(direct.Owner.ID))
				}
				for _, b := range out.Buckets {
					names = append(names, aws.ToString(b.Name))
					if aws.ToString(b.BucketRegion) != e.gw.Region {
						t.Errorf("%s: BucketRegion %q, want %q", aws.ToString(b.Name), aws.ToString(b.BucketRegion), e.gw.Region)
					}
				}
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("listed %v, want %v", names, tt.want)
			}
			if tt.max > 0 && pages < (len(tt.want)+int(tt.max)-1)/int(tt.max) {
				t.Errorf("%d pages of at most %d for %d buckets", pages, tt.max, len(tt.want))
			}
		})
	}
	for _, bad := range []string{"max-buckets=0", "max-buckets=10001", "max-buckets=x", "continuation-token=%21%21"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.signet.URL+"/?"+bad, nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if er := readError(t, resp); resp.StatusCode != 400 || er.Code != "InvalidArgument" {
			t.Errorf("%s: %d %+v, want 400 InvalidArgument", bad, resp.StatusCode, er)
		}
	}
}
