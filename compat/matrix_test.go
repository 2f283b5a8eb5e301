package compat_test

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/internal/testenv"
	"github.com/signet-proxy/signet/proxy"
)

// clients are the real S3 clients of the matrix, in the order of its rows.
var clients = []struct {
	name string
	// start checks that the client is installed, failing the test with how to install it
	// when it is not, and returns it pointed at endpoint with dummy credentials.
	start func(t *testing.T, endpoint string) client
}{
	{"aws-cli", newAWSCLI},
	{"boto3", newBoto3},
	{"rclone", newRclone},
	{"s3cmd", newS3cmd},
	{"aws-sdk-go-v2", newGoSDK},
	{"minio-go", newMinioGo},
	{"aws-sdk-js-v3", newJSSDK},
}

// The scenario's steps, in order: the columns of the matrix.
const (
	stepMB       = "mb"
	stepPutSmall = "put small"
	stepPutLarge = "put 100MiB"
	stepGet      = "get 100MiB"
	stepCopy     = "copy"
	stepList     = "list prefix"
	stepPresign  = "presign get"
	stepDelete   = "delete"
)

var steps = []string{stepMB, stepPutSmall, stepPutLarge, stepGet, stepCopy, stepList, stepPresign, stepDelete}

// The scenario's objects. The small key has a space, which every client spells its own
// way in paths, copy sources and presigned URLs.
const (
	smallKey = "docs/hello world.txt"
	largeKey = "docs/big.bin"
	copyKey  = "copies/hello world.txt"

	smallSize = 100_000
	largeSize = 100 << 20
)

// client is one real S3 client, driven the way an application or a user would drive it.
// Every method talks to signet only.
type client interface {
	MakeBucket(ctx context.Context, bucket string) error
	// Put uploads file the way the client uploads a file of its size by default (single
	// PUT or multipart, with its own threshold and part size).
	Put(ctx context.Context, bucket, key, file string) error
	// Get downloads the object into file.
	Get(ctx context.Context, bucket, key, file string) error
	// List returns the keys under prefix.
	List(ctx context.Context, bucket, prefix string) ([]string, error)
	// Copy copies src to dst in bucket server-side.
	Copy(ctx context.Context, bucket, src, dst string) error
	Delete(ctx context.Context, bucket, key string) error
	// Presign returns presigned GET URLs made by the client's own presigner, by variant
	// ("" when the client has only one), or errNoPresign.
	Presign(ctx context.Context, bucket, key string) (map[string]string, error)
}

// errNoPresign is what Presign returns for a client that cannot presign.
var errNoPresign = errors.New("the client cannot presign URLs")

// TestMatrix runs one scenario with every real client through signet to versitygw, which
// verifies every signature, and checks each step by what a user would notice: the bytes
// stored upstream (read from versitygw's data directory, so aws-chunked framing leaking
// into an object shows), the bytes downloaded, the listing, the copy, the presigned fetch
// and the object's absence after delete. It logs the matrix and what each client sent.
func TestMatrix(t *testing.T) {
	dir := t.TempDir()
	small := writeRandomFile(t, filepath.Join(dir, "small"), smallSize, 1)
	large := writeRandomFile(t, filepath.Join(dir, "large"), largeSize, 2)

	m := &matrix{cells: map[string]map[string]string{}, sends: map[string]sendShape{}}
	t.Cleanup(func() { t.Logf("compatibility matrix:\n%s", m.markdown()) })
	for _, tc := range clients {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c := tc.start(t, e.signet.URL)
			runScenario(t, e, c, "compat-"+tc.name, small, large, m.row(tc.name))
			shape := e.rec.shape("compat-" + tc.name)
			m.setSends(tc.name, shape)
			t.Logf("single PUT: %s; 100 MiB upload: %s", shape.single, shape.large)
		})
	}
}

// runScenario runs the steps in order, each a subtest, recording each cell in row.
func runScenario(t *testing.T, e *env, c client, bucket string, small, large testFile, row func(step, cell string)) {
	t.Helper()
	step := func(name string, f func(t *testing.T) (cell string)) bool {
		mark := e.rec.mark()
		cell := ""
		ok := t.Run(name, func(t *testing.T) {
			defer func() {
				if t.Failed() {
					e.rec.logSince(t, mark)
				}
			}()
			cell = f(t)
		})
		switch {
		case !ok:
			cell = "✗"
		case cell == "":
			cell = "✓"
		}
		row(name, cell)
		return ok
	}

	if !step(stepMB, func(t *testing.T) string {
		if err := c.MakeBucket(t.Context(), bucket); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(e.gw.DataDir, bucket)); err != nil || !fi.IsDir() {
			t.Fatalf("bucket %s not created upstream: %v", bucket, err)
		}
		return ""
	}) {
		t.Fatal("no bucket: the remaining steps cannot run")
	}
	step(stepPutSmall, func(t *testing.T) string {
		if err := c.Put(t.Context(), bucket, smallKey, small.path); err != nil {
			t.Fatal(err)
		}
		e.checkStored(t, bucket, smallKey, small)
		return ""
	})
	step(stepPutLarge, func(t *testing.T) string {
		if err := c.Put(t.Context(), bucket, largeKey, large.path); err != nil {
			t.Fatal(err)
		}
		e.checkStored(t, bucket, largeKey, large)
		return ""
	})
	step(stepGet, func(t *testing.T) string {
		got := filepath.Join(t.TempDir(), "got")
		if err := c.Get(t.Context(), bucket, largeKey, got); err != nil {
			t.Fatal(err)
		}
		if sum, n := sha256File(t, got); sum != large.sum {
			t.Errorf("downloaded %d bytes with SHA-256 %x, want %d bytes with %x", n, sum, large.size, large.sum)
		}
		return ""
	})
	step(stepCopy, func(t *testing.T) string {
		if err := c.Copy(t.Context(), bucket, smallKey, copyKey); err != nil {
			t.Fatal(err)
		}
		e.checkStored(t, bucket, copyKey, small)
		return ""
	})
	step(stepList, func(t *testing.T) string {
		// copies/ holds an object too: the prefix must leave it out.
		keys, err := c.List(t.Context(), bucket, "docs/")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		if want := []string{largeKey, smallKey}; !slices.Equal(keys, want) {
			t.Errorf("list docs/ = %q, want %q", keys, want)
		}
		return ""
	})
	step(stepPresign, func(t *testing.T) string {
		urls, err := c.Presign(t.Context(), bucket, smallKey)
		if errors.Is(err, errNoPresign) {
			t.Log(err)
			return "n/a"
		}
		if err != nil {
			t.Fatal(err)
		}
		var versions []string
		for _, variant := range slices.Sorted(maps.Keys(urls)) {
			e.checkPresigned(t, variant, urls[variant], small)
			versions = append(versions, signatureVersion(urls[variant]))
		}
		return "✓ (" + strings.Join(versions, ", ") + ")"
	})
	step(stepDelete, func(t *testing.T) string {
		if err := c.Delete(t.Context(), bucket, smallKey); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(e.gw.DataDir, bucket, smallKey)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still stored upstream after delete (stat: %v)", smallKey, err)
		}
		if status := e.head(t, bucket, smallKey); status != http.StatusNotFound {
			t.Errorf("HEAD %s through signet after delete = %d, want 404", smallKey, status)
		}
		keys, err := c.List(t.Context(), bucket, "docs/")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{largeKey}; !slices.Equal(keys, want) {
			t.Errorf("list docs/ after delete = %q, want %q", keys, want)
		}
		return ""
	})
}

// env is a versitygw with signet in front of it, and a recorder in front of signet.
type env struct {
	gw     *testenv.VersityGW
	signet *httptest.Server
	rec    *recorder
	http   *http.Client
}

// newEnv starts versitygw and signet, which routes every "compat-*" bucket to it.
func newEnv(t *testing.T) *env {
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
	rec := &recorder{next: h}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &env{gw: gw, signet: srv, rec: rec, http: &http.Client{Transport: tr}}
}

// newHandler builds a proxy.Handler from YAML through the real config loader, as
// `signet serve` does.
func newHandler(t *testing.T, yaml string) *proxy.Handler {
	t.Helper()
	cfg, err := config.Parse("compat.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	table, err := proxy.Setup(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { table.Close() })
	return proxy.New(table, proxy.Options{Logger: logger})
}

// checkStored compares the object's bytes, read from versitygw's data directory, with want.
func (e *env) checkStored(t *testing.T, bucket, key string, want testFile) {
	t.Helper()
	sum, n := sha256File(t, filepath.Join(e.gw.DataDir, bucket, key))
	if sum != want.sum {
		t.Errorf("stored %s/%s is %d bytes with SHA-256 %x, want %d bytes with %x", bucket, key, n, sum, want.size, want.sum)
	}
}

// checkPresigned fetches a presigned URL with plain net/http and compares the body.
func (e *env) checkPresigned(t *testing.T, variant, rawURL string, want testFile) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("presigned URL %q (%s): %v", rawURL, variant, err)
	}
	if base, _ := url.Parse(e.signet.URL); u.Host != base.Host {
		t.Fatalf("presigned URL %q (%s) does not point at signet %s", rawURL, variant, base.Host)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatalf("fetch presigned URL (%s): %v", variant, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("read presigned GET (%s): %v", variant, err)
	}
	if resp.StatusCode != http.StatusOK || [32]byte(h.Sum(nil)) != want.sum {
		t.Errorf("presigned GET (%s) %s: status %d, %d bytes with SHA-256 %x; want 200 and %d bytes with %x",
			variant, rawURL, resp.StatusCode, n, h.Sum(nil), want.size, want.sum)
	}
}

// signatureVersion names the signature a presigned URL carries.
func signatureVersion(rawURL string) string {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		return "unparsable"
	case u.Query().Has("X-Amz-Signature"):
		return "SigV4"
	case u.Query().Has("Signature"):
		return "SigV2"
	}
	return "unsigned"
}

// head sends an unsigned HEAD for bucket/key through signet and returns the status.
func (e *env) head(t *testing.T, bucket, key string) int {
	t.Helper()
	u, err := url.JoinPath(e.signet.URL, bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// testFile is a file of deterministic random bytes.
type testFile struct {
	path string
	size int64
	sum  [32]byte
}

// writeRandomFile writes size bytes from a ChaCha8 stream seeded with seed, streaming
// them to disk.
func writeRandomFile(t *testing.T, path string, size int64, seed byte) testFile {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err := io.CopyN(w, rand.NewChaCha8([32]byte{seed}), size); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return testFile{path: path, size: size, sum: [32]byte(h.Sum(nil))}
}

// sha256File hashes a file; a missing file fails the test.
func sha256File(t *testing.T, path string) ([32]byte, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return [32]byte(h.Sum(nil)), n
}

// matrix collects the cells of every client's row, written by parallel subtests.
type matrix struct {
	mu    sync.Mutex
	cells map[string]map[string]string // client -> step -> ✓ ✗ n/a
	sends map[string]sendShape
}

func (m *matrix) row(client string) func(step, cell string) {
	return func(step, cell string) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.cells[client] == nil {
			m.cells[client] = map[string]string{}
		}
		m.cells[client][step] = cell
	}
}

func (m *matrix) setSends(client string, s sendShape) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sends[client] = s
}

// markdown renders the matrix; a step that did not run shows "–".
func (m *matrix) markdown() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	b.WriteString("| client | " + strings.Join(steps, " | ") + " | single PUT sends | 100 MiB upload |\n")
	b.WriteString("|---" + strings.Repeat("|:-:", len(steps)) + "|---|---|\n")
	for _, c := range clients {
		b.WriteString("| " + c.name)
		for _, s := range steps {
			cell := m.cells[c.name][s]
			if cell == "" {
				cell = "–"
			}
			b.WriteString(" | " + cell)
		}
		sh := m.sends[c.name]
		fmt.Fprintf(&b, " | %s | %s |\n", sh.single, sh.large)
	}
	return b.String()
}

// recorder sits in front of signet and records the shape of every request: what the
// client sent, before signet touched it, and the status it got.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []recorded
}

// recorded is one request as the client sent it. It keeps no signatures.
type recorded struct {
	method, path, rawPath, query string
	header                       http.Header // the client's headers, Authorization reduced to its scheme
	contentLength                int64       // -1: none (Transfer-Encoding: chunked)
	status                       int
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h := req.Header.Clone()
	if a := h.Get("Authorization"); a != "" {
		scheme, _, _ := strings.Cut(a, " ")
		h.Set("Authorization", scheme)
	}
	rec := recorded{method: req.Method, path: req.URL.Path, rawPath: req.URL.EscapedPath(), query: req.URL.RawQuery,
		header: h, contentLength: req.ContentLength}
	r.mu.Lock()
	i := len(r.reqs)
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()

	sw := &statusWriter{ResponseWriter: w}
	r.next.ServeHTTP(sw, req)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	r.mu.Lock()
	r.reqs[i].status = sw.status
	r.mu.Unlock()
}

// mark returns the position of the next request, for logSince.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// logSince logs the requests recorded since mark, to show what a failing step sent.
func (r *recorder) logSince(t *testing.T, mark int) {
	t.Helper()
	r.mu.Lock()
	reqs := slices.Clone(r.reqs[mark:])
	r.mu.Unlock()
	var b strings.Builder
	for _, q := range reqs {
		fmt.Fprintf(&b, "  %d %s %s?%s content-length=%d %s\n", q.status, q.method, q.rawPath, redactQuery(q.query), q.contentLength, describeHeaders(q))
	}
	t.Logf("requests of this step, as the client sent them:\n%s", b.String())
}

// redactQuery drops presigned-URL signatures from a query for logging.
func redactQuery(raw string) string {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return raw
	}
	for _, k := range []string{"X-Amz-Signature", "Signature", "X-Amz-Credential", "AWSAccessKeyId"} {
		if q.Has(k) {
			q.Set(k, "…")
		}
	}
	return q.Encode()
}

// describeHeaders summarises the headers that decide how signet handles a body.
func describeHeaders(q recorded) string {
	var parts []string
	for _, k := range []string{"Authorization", "X-Amz-Content-Sha256", "Content-Encoding", "X-Amz-Decoded-Content-Length",
		"X-Amz-Trailer", "X-Amz-Sdk-Checksum-Algorithm", "Content-Md5", "Expect", "Transfer-Encoding", "X-Amz-Copy-Source"} {
		if v := q.header.Values(k); len(v) > 0 {
			val := strings.Join(v, ",")
			if k == "X-Amz-Content-Sha256" && isHexSHA256(val) {
				val = "<hex sha256>"
			}
			parts = append(parts, k+": "+val)
		}
	}
	for k := range q.header {
		if strings.HasPrefix(k, "X-Amz-Checksum-") {
			parts = append(parts, k)
		}
	}
	return strings.Join(parts, "; ")
}

func isHexSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// sendShape is what a client sent, for the matrix.
type sendShape struct {
	single string // the single PUT of the small file
	large  string // how the 100 MiB file went up
}

// shape summarises the recorded requests of bucket's scenario.
func (r *recorder) shape(bucket string) sendShape {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := sendShape{single: "(not seen)", large: "(not seen)"}
	var parts []recorded
	var singleLarge *recorded
	for i, q := range r.reqs {
		query, _ := url.ParseQuery(q.query)
		switch {
		case q.method == http.MethodPut && q.path == "/"+bucket+"/"+smallKey && !query.Has("uploadId") && s.single == "(not seen)":
			s.single = describePut(q)
		case q.method == http.MethodPut && q.path == "/"+bucket+"/"+largeKey && query.Has("partNumber"):
			parts = append(parts, q)
		case q.method == http.MethodPut && q.path == "/"+bucket+"/"+largeKey && !query.Has("uploadId") && q.header.Get("X-Amz-Copy-Source") == "":
			singleLarge = &r.reqs[i]
		}
	}
	switch {
	case len(parts) > 0:
		// Parts arrive concurrently: the largest is the client's part size.
		p := slices.MaxFunc(parts, func(a, b recorded) int { return cmp.Compare(partSize(a), partSize(b)) })
		s.large = fmt.Sprintf("multipart, %d parts of %s: %s", len(parts), mib(partSize(p)), describePut(p))
	case singleLarge != nil:
		s.large = "single PUT: " + describePut(*singleLarge)
	}
	return s
}

// describePut renders a PUT's payload hash, framing, checksums and Expect for the matrix.
func describePut(q recorded) string {
	hash := q.header.Get("X-Amz-Content-Sha256")
	switch {
	case hash == "":
		hash = "no payload hash"
	case isHexSHA256(hash):
		hash = "hex SHA-256"
	default:
		hash = "`" + hash + "`"
	}
	parts := []string{hash}
	if strings.Contains(q.header.Get("Content-Encoding"), "aws-chunked") {
		chunked := "aws-chunked"
		if q.header.Get("X-Amz-Decoded-Content-Length") == "" {
			chunked += " without decoded length"
		}
		parts = append(parts, chunked)
	}
	if t := q.header.Get("X-Amz-Trailer"); t != "" {
		parts = append(parts, "trailer "+t)
	}
	if q.contentLength < 0 {
		parts = append(parts, "Transfer-Encoding: chunked, no Content-Length")
	}
	if q.header.Get("Content-Md5") != "" {
		parts = append(parts, "Content-MD5")
	}
	var sums []string
	for k := range q.header {
		if strings.HasPrefix(k, "X-Amz-Checksum-") {
			sums = append(sums, strings.ToLower(k))
		}
	}
	slices.Sort(sums)
	parts = append(parts, sums...)
	if e := q.header.Get("Expect"); e != "" {
		parts = append(parts, "Expect: "+e)
	}
	if a := q.header.Get("Authorization"); a != "AWS4-HMAC-SHA256" {
		parts = append(parts, "Authorization: "+a)
	}
	return strings.Join(parts, ", ")
}

// partSize is a part's payload size: its decoded length when aws-chunked.
func partSize(q recorded) int64 {
	var n int64
	if _, err := fmt.Sscan(q.header.Get("X-Amz-Decoded-Content-Length"), &n); err == nil {
		return n
	}
	return q.contentLength
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}

// statusWriter records the final status; Unwrap lets ReverseProxy reach Flush.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if code >= 200 && w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
