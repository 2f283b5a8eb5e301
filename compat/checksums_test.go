package compat_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/crc64nvme"

	"github.com/signet-proxy/signet/internal/testenv"
)

// checksumEnv is versitygw with signet in front of it on a plain HTTP and an HTTPS
// listener (clients send checksums differently on each).
type checksumEnv struct {
	gw         *testenv.VersityGW
	direct     *s3.Client // straight to versitygw
	http, tls  *httptest.Server
	caFile     string // the HTTPS listener's certificate, PEM
	bucket     string
	mu         sync.Mutex
	cells      map[string]map[string]string // row -> listener -> cell
	small, big testFile
	sent       map[string]map[string]bool // object path -> how the client sent checksums
}

// recordChecksums notes how each request to signet carried a checksum: "trailer" (an
// aws-chunked trailer), "header" (x-amz-checksum-<alg>) or "declared" (a multipart
// upload's x-amz-checksum-algorithm).
func (e *checksumEnv) recordChecksums(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var kinds []string
		if r.Header.Get("X-Amz-Trailer") != "" {
			kinds = append(kinds, "trailer")
		}
		for k := range r.Header {
			switch lk := strings.ToLower(k); {
			case lk == "x-amz-checksum-algorithm":
				kinds = append(kinds, "declared")
			case strings.HasPrefix(lk, "x-amz-checksum-") && lk != "x-amz-checksum-type" && lk != "x-amz-checksum-mode":
				kinds = append(kinds, "header")
			}
		}
		e.mu.Lock()
		if e.sent[r.URL.Path] == nil {
			e.sent[r.URL.Path] = map[string]bool{}
		}
		for _, k := range kinds {
			e.sent[r.URL.Path][k] = true
		}
		e.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// reached reports whether any request for key reached signet.
func (e *checksumEnv) reached(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.sent["/"+e.bucket+"/"+key]
	return ok
}

// sentChecksum says how the client sent checksums for key: "" when it sent none.
func (e *checksumEnv) sentChecksum(key string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var kinds []string
	for _, k := range []string{"declared", "header", "trailer"} {
		if e.sent["/"+e.bucket+"/"+key][k] {
			kinds = append(kinds, k)
		}
	}
	return strings.Join(kinds, ", ")
}

func newChecksumEnv(t *testing.T) *checksumEnv {
	t.Helper()
	gw := testenv.StartVersityGW(t)
	h := newHandler(t, fmt.Sprintf(`
accounts:
  gw:
    endpoint: %s
    region: %s
    credentials: {access_key_id: %s, secret_access_key: %q}
buckets:
  - {name: "compat-*", account: gw}
`, gw.Endpoint, gw.Region, gw.AccessKey, gw.SecretKey))
	e := &checksumEnv{gw: gw, bucket: "compat-checksums", cells: map[string]map[string]string{}, sent: map[string]map[string]bool{}}
	e.http = httptest.NewServer(e.recordChecksums(h))
	t.Cleanup(e.http.Close)
	e.tls = httptest.NewTLSServer(e.recordChecksums(h))
	t.Cleanup(e.tls.Close)
	e.caFile = filepath.Join(t.TempDir(), "signet.pem")
	if err := os.WriteFile(e.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.tls.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	e.direct = s3.New(s3.Options{
		BaseEndpoint: aws.String(gw.Endpoint), Region: gw.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(gw.AccessKey, gw.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: tr},
	})
	if _, err := e.direct.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(e.bucket)}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e.small = writeRandomFile(t, filepath.Join(dir, "small"), 3<<20, 3)
	e.big = writeRandomFile(t, filepath.Join(dir, "big"), 20<<20, 4)
	return e
}

func (e *checksumEnv) listener(name string) *httptest.Server {
	if name == "https" {
		return e.tls
	}
	return e.http
}

func (e *checksumEnv) record(row, listener, cell string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cells[row] == nil {
		e.cells[row] = map[string]string{}
	}
	e.cells[row][listener] = cell
}

func (e *checksumEnv) markdown(rows []string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	b.WriteString("| client, operation | HTTP listener | HTTPS listener |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r, cellOrFail(e.cells[r]["http"]), cellOrFail(e.cells[r]["https"]))
	}
	return b.String()
}

func cellOrFail(s string) string {
	if s == "" {
		return "✗"
	}
	return s
}

// upload is what one client operation reports: the checksum algorithm it used (the SDK
// default, CRC32, unless told otherwise) and the part size of a multipart upload (0 for a
// single PUT), for the expected COMPOSITE checksum.
type upload struct {
	alg      types.ChecksumAlgorithm
	partSize int64
}

// checkStored checks that the object holds file's bytes and that versitygw, asked
// directly with ChecksumMode ENABLED, has the client's checksum.
func (e *checksumEnv) checkStored(t *testing.T, key string, f testFile, up upload) string {
	t.Helper()
	if sum, n := sha256File(t, filepath.Join(e.gw.DataDir, e.bucket, key)); sum != f.sum {
		t.Fatalf("stored %d bytes with SHA-256 %x, want %d bytes with %x", n, sum, f.size, f.sum)
	}
	head, err := e.direct.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	got := headChecksum(up.alg, head)
	sent := e.sentChecksum(key)
	if sent == "" {
		// The client sent no checksum (aws-sdk-go-v2 PutObject signs a hex SHA-256 instead,
		// and over HTTPS sends UNSIGNED-PAYLOAD alone): nothing to pass on.
		return "✓ (the client sends no checksum)"
	}
	want := checksumOf(up.alg, data)
	kind := string(head.ChecksumType)
	if head.ChecksumType == types.ChecksumTypeComposite && up.partSize > 0 {
		want = compositeChecksum(up.alg, data, up.partSize)
	}
	if got != want {
		t.Fatalf("upstream has %s %s %q, want the client's %q", kind, up.alg, got, want)
	}
	if kind == "" {
		kind = "FULL_OBJECT"
	}
	return fmt.Sprintf("✓ %s %s (%s)", up.alg, strings.ToLower(strings.ReplaceAll(kind, "_", "-")), sent)
}

func checksumOf(alg types.ChecksumAlgorithm, data []byte) string {
	return base64.StdEncoding.EncodeToString(rawChecksum(alg, data))
}

func rawChecksum(alg types.ChecksumAlgorithm, data []byte) []byte {
	switch alg {
	case types.ChecksumAlgorithmCrc32:
		return binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(data))
	case types.ChecksumAlgorithmCrc32c:
		return binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	case types.ChecksumAlgorithmCrc64nvme:
		return binary.BigEndian.AppendUint64(nil, crc64nvme.Checksum(data))
	case types.ChecksumAlgorithmSha1:
		s := sha1.Sum(data)
		return s[:]
	case types.ChecksumAlgorithmSha256:
		s := sha256.Sum256(data)
		return s[:]
	}
	panic("no algorithm " + alg)
}

// compositeChecksum is S3's COMPOSITE checksum of data uploaded in parts of partSize: the
// checksum of the parts' checksums, then "-" and the number of parts.
func compositeChecksum(alg types.ChecksumAlgorithm, data []byte, partSize int64) string {
	var sums []byte
	n := 0
	for off := int64(0); off < int64(len(data)); off += partSize {
		sums = append(sums, rawChecksum(alg, data[off:min(off+partSize, int64(len(data)))])...)
		n++
	}
	return checksumOf(alg, sums) + "-" + strconv.Itoa(n)
}

func headChecksum(alg types.ChecksumAlgorithm, h *s3.HeadObjectOutput) string {
	switch alg {
	case types.ChecksumAlgorithmCrc32:
		return aws.ToString(h.ChecksumCRC32)
	case types.ChecksumAlgorithmCrc32c:
		return aws.ToString(h.ChecksumCRC32C)
	case types.ChecksumAlgorithmCrc64nvme:
		return aws.ToString(h.ChecksumCRC64NVME)
	case types.ChecksumAlgorithmSha1:
		return aws.ToString(h.ChecksumSHA1)
	case types.ChecksumAlgorithmSha256:
		return aws.ToString(h.ChecksumSHA256)
	}
	return ""
}

// goSDKOn is the newest aws-sdk-go-v2 S3 client with its default checksum settings, talking
// to srv. Those are what config.LoadDefaultConfig resolves, "when_supported" both ways: a
// bare s3.Options leaves them unset, which computes no checksum unless one is asked for.
func goSDKOn(t *testing.T, srv *httptest.Server) *s3.Client {
	t.Helper()
	hc := srv.Client()
	t.Cleanup(hc.CloseIdleConnections)
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL), Region: region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(dummyKeyID, dummySecret, ""),
		HTTPClient:  hc, RetryMaxAttempts: 1,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	})
}

// onlyReader hides a file's Seek and its length: a stream body.
type onlyReader struct{ io.Reader }

// checksumCase is one client operation of the checksum matrix.
type checksumCase struct {
	name string
	file func(e *checksumEnv) testFile
	run  func(t *testing.T, e *checksumEnv, listener, key, file string) (upload, error)
}

var checksumCases = []checksumCase{
	{"aws-sdk-go-v2 s3 1.115 PutObject, file", small, func(t *testing.T, e *checksumEnv, l, key, file string) (upload, error) {
		f, err := os.Open(file)
		if err != nil {
			return upload{}, err
		}
		defer f.Close()
		_, err = goSDKOn(t, e.listener(l)).PutObject(t.Context(), &s3.PutObjectInput{Bucket: &e.bucket, Key: &key, Body: f})
		return upload{alg: types.ChecksumAlgorithmCrc32}, err
	}},
	{"aws-sdk-go-v2 s3 1.115 PutObject, stream", small, func(t *testing.T, e *checksumEnv, l, key, file string) (upload, error) {
		f, err := os.Open(file)
		if err != nil {
			return upload{}, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return upload{}, err
		}
		_, err = goSDKOn(t, e.listener(l)).PutObject(t.Context(), &s3.PutObjectInput{Bucket: &e.bucket, Key: &key, Body: onlyReader{f}, ContentLength: aws.Int64(fi.Size())})
		return upload{alg: types.ChecksumAlgorithmCrc32}, err
	}},
	{"aws-sdk-go-v2 feature/s3/manager 1.23 Uploader (multipart)", big, func(t *testing.T, e *checksumEnv, l, key, file string) (upload, error) {
		f, err := os.Open(file)
		if err != nil {
			return upload{}, err
		}
		defer f.Close()
		u := manager.NewUploader(goSDKOn(t, e.listener(l)))
		_, err = u.Upload(t.Context(), &s3.PutObjectInput{Bucket: &e.bucket, Key: &key, Body: f})
		return upload{alg: types.ChecksumAlgorithmCrc32, partSize: u.PartSize}, err
	}},
	{"aws-sdk-go-v2 feature/s3/transfermanager 0.5 UploadObject (multipart)", big, func(t *testing.T, e *checksumEnv, l, key, file string) (upload, error) {
		f, err := os.Open(file)
		if err != nil {
			return upload{}, err
		}
		defer f.Close()
		tm := transfermanager.New(goSDKOn(t, e.listener(l)))
		_, err = tm.UploadObject(t.Context(), &transfermanager.UploadObjectInput{Bucket: &e.bucket, Key: &key, Body: f})
		return upload{alg: types.ChecksumAlgorithmCrc32, partSize: 8 << 20}, err
	}},
	{"@aws-sdk/client-s3 3.1175 PutObject, stream", small, func(t *testing.T, e *checksumEnv, l, key, file string) (upload, error) {
		return upload{alg: types.ChecksumAlgorithmCrc32}, jsSDKOn(t, e, l).Put(t.Context(), e.bucket, key, file)
	}},
	{"@aws-sdk/lib-storage 3.1175 Upload (multipart)", big, func(t *testing.T, e *checksumEnv, l, key, file string) (upload, error) {
		return upload{alg: types.ChecksumAlgorithmCrc32, partSize: 5 << 20}, jsSDKOn(t, e, l).Put(t.Context(), e.bucket, key, file)
	}},
}

func small(e *checksumEnv) testFile { return e.small }
func big(e *checksumEnv) testFile   { return e.big }

// jsSDKOn is the JavaScript SDK client of compat/testdata, trusting the HTTPS listener.
func jsSDKOn(t *testing.T, e *checksumEnv, l string) client {
	t.Helper()
	c := newJSSDK(t, e.listener(l).URL).(scriptClient)
	c.cmd.env = append(c.cmd.env, "NODE_EXTRA_CA_CERTS="+e.caFile)
	return c
}

// TestChecksumMatrix: the newest SDKs and mc, with their default checksum settings, over
// signet's HTTP and HTTPS listeners: each upload completes, the bytes stored are the file's,
// and versitygw, asked directly, holds the checksum the client computed (for multipart
// uploads the COMPOSITE or FULL_OBJECT one); each download passes the client's own response
// checksum validation.
func TestChecksumMatrix(t *testing.T) {
	e := newChecksumEnv(t)
	cases := append(slices.Clone(checksumCases), mcCases()...)
	var rows []string
	for _, c := range cases {
		rows = append(rows, c.name)
	}
	rows = append(rows, "aws-sdk-go-v2 GetObject, checksum validated", "@aws-sdk/client-s3 GetObject, checksum validated")
	t.Cleanup(func() { t.Logf("checksum matrix:\n%s", e.markdown(rows)) })
	for _, l := range []string{"http", "https"} {
		for i, c := range cases {
			t.Run(l+"/"+c.name, func(t *testing.T) {
				key := fmt.Sprintf("%s/%d", l, i)
				f := c.file(e)
				up, err := c.run(t, e, l, key, f.path)
				if err != nil && !e.reached(key) {
					// Nothing reached signet: the client itself refuses (aws-sdk-go-v2 cannot
					// hash a stream it cannot seek over plain HTTP, and sends trailers only
					// over HTTPS).
					t.Log(err)
					e.record(c.name, l, "n/a (the SDK refuses it before sending)")
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				e.record(c.name, l, e.checkStored(t, key, f, up))
			})
		}
		t.Run(l+"/downloads", func(t *testing.T) {
			key := l + "/download"
			if _, err := goSDKOn(t, e.http).PutObject(t.Context(), &s3.PutObjectInput{Bucket: &e.bucket, Key: &key, Body: mustOpen(t, e.big.path),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}); err != nil {
				t.Fatal(err)
			}
			out, err := goSDKOn(t, e.listener(l)).GetObject(t.Context(), &s3.GetObjectInput{Bucket: &e.bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			_, err = io.Copy(h, out.Body) // the SDK validates the CRC32 as it reads
			out.Body.Close()
			if err != nil || [32]byte(h.Sum(nil)) != e.big.sum || aws.ToString(out.ChecksumCRC32) == "" {
				t.Fatalf("go download: %v, CRC32 %q", err, aws.ToString(out.ChecksumCRC32))
			}
			e.record(rows[len(rows)-2], l, "✓")
			got := filepath.Join(t.TempDir(), "got")
			if err := jsSDKOn(t, e, l).Get(t.Context(), e.bucket, key, got); err != nil {
				t.Fatal(err)
			}
			if sum, _ := sha256File(t, got); sum != e.big.sum {
				t.Fatal("js download differs")
			}
			e.record(rows[len(rows)-1], l, "✓")
		})
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
