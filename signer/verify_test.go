package signer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	miniosigner "github.com/minio/minio-go/v7/pkg/signer"
)

const (
	clientKeyID       = "SIGNETCLIENT01"
	clientSecret      = "local/secret+with=odd&chars"
	clientWrongSecret = "not-the-client-secret"
)

// awkwardKeys are object keys whose canonical URI differs from Go's own escaping, or from
// the raw path a client sends.
var awkwardKeys = []string{
	"plain.txt",
	"a b+c",
	"100%.txt",
	"~tilde",
	"x:y@z=1&2",
	"é/日本語 🎉",
	"a//b",
	"dir//nested/../x/./y",
	"semi;colon,comma$dollar",
	"q?mark#hash",
	"%2Fliteral-percent",
	"'quote'(paren)*!",
}

// secretsOf returns a secrets function over id, secret pairs.
func secretsOf(pairs ...string) func(string) (string, bool) {
	m := make(map[string]string)
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(id string) (string, bool) {
		s, ok := m[id]
		return s, ok
	}
}

// inbound is what the verifying test server saw of one request.
type inbound struct {
	method, path, payloadHash string
	accessKeyID               string
	err                       error // Verify with the right secret, then the body
	wrongErr                  error // Verify with a wrong secret
	payload                   []byte
	bodyCheck, chunkVerifier  bool
	signatures                int // chunk and trailer signatures verified
}

// newVerifyServer starts a server that verifies every request twice, with the client's
// secret and a wrong one, reads the body through what Verify returned (in the order the
// proxy is to use), reports on the returned channel and answers with a canned S3 response.
func newVerifyServer(t *testing.T, useTLS bool) (*httptest.Server, <-chan inbound) {
	t.Helper()
	right := NewVerifier(secretsOf(clientKeyID, clientSecret))
	wrong := NewVerifier(secretsOf(clientKeyID, clientWrongSecret))
	results := make(chan inbound, 16)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := inbound{method: r.Method, path: r.URL.Path, payloadHash: r.Header.Get("X-Amz-Content-Sha256")}
		_, in.wrongErr = wrong.Verify(r)
		ver, err := right.Verify(r)
		if err == nil {
			in.accessKeyID = ver.AccessKeyID
			in.bodyCheck, in.chunkVerifier = ver.BodyCheck != nil, ver.ChunkVerifier != nil
			in.payload, in.signatures, err = readVerifiedBody(r, ver)
		}
		in.err = err
		results <- in
		cannedS3Response(w, r)
	})
	srv := httptest.NewUnstartedServer(h)
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, results
}

// readVerifiedBody reads r's payload the way the proxy is to: aws-chunked bodies through a
// ChunkedReader with the ChunkVerifier hooks, other bodies through BodyCheck when set.
func readVerifiedBody(r *http.Request, ver *Verified) ([]byte, int, error) {
	opts, chunked, err := ChunkedOptionsFromHeader(r.Header)
	if err != nil {
		return nil, 0, err
	}
	var body io.Reader = r.Body
	signatures := 0
	switch {
	case chunked:
		if ver.ChunkVerifier != nil {
			ver.ChunkVerifier(&opts)
			chunk, trailer := opts.VerifyChunk, opts.VerifyTrailer
			opts.VerifyChunk = func(sig string, sum []byte) error {
				if err := chunk(sig, sum); err != nil {
					return err
				}
				signatures++
				return nil
			}
			opts.VerifyTrailer = func(sig string, b []byte) error {
				if err := trailer(sig, b); err != nil {
					return err
				}
				signatures++
				return nil
			}
		} else if opts.Mode != StreamingUnsignedTrailer {
			return nil, 0, fmt.Errorf("%s body but no ChunkVerifier", opts.Mode)
		}
		body = NewChunkedReader(body, opts)
	case ver.BodyCheck != nil:
		body = ver.BodyCheck(body)
	}
	b, err := io.ReadAll(body)
	return b, signatures, err
}

func cannedS3Response(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	h.Set("Last-Modified", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat))
	q := r.URL.Query()
	switch {
	case q.Has("list-type"):
		h.Set("Content-Type", "application/xml")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><IsTruncated>false</IsTruncated></ListBucketResult>`)
	case q.Has("delete"):
		h.Set("Content-Type", "application/xml")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>`)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", "5")
		if r.Method == http.MethodGet {
			io.WriteString(w, "hello")
		}
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	}
}

// received returns the requests the server has seen; the handler reports before it answers,
// so after a client call returns, its requests are all there.
func received(t *testing.T, results <-chan inbound) []inbound {
	t.Helper()
	var ins []inbound
	for {
		select {
		case in := <-results:
			ins = append(ins, in)
		default:
			if len(ins) == 0 {
				t.Fatal("the server saw no request")
			}
			return ins
		}
	}
}

// checkVerified checks that every request verified with the client's secret and failed with
// SignatureDoesNotMatch with a wrong one.
func checkVerified(t *testing.T, ins []inbound) {
	t.Helper()
	for _, in := range ins {
		if in.err != nil {
			t.Errorf("%s %s (%s): %v", in.method, in.path, in.payloadHash, in.err)
			continue
		}
		if in.accessKeyID != clientKeyID {
			t.Errorf("%s %s: access key id %q", in.method, in.path, in.accessKeyID)
		}
		if ve, ok := errors.AsType[*Error](in.wrongErr); !ok || ve.Code != "SignatureDoesNotMatch" || ve.Status != http.StatusForbidden {
			t.Errorf("%s %s with a wrong secret: %v, want 403 SignatureDoesNotMatch", in.method, in.path, in.wrongErr)
		}
	}
}

func newS3Client(srv *httptest.Server, region string) *s3.Client {
	return s3.New(s3.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(clientKeyID, clientSecret, ""),
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		HTTPClient:   srv.Client(),
		Retryer:      aws.NopRetryer{},
	})
}

// TestVerifyAWSSDK verifies what aws-sdk-go-v2's S3 client sends, through a real server.
func TestVerifyAWSSDK(t *testing.T) {
	payload := testPayload(70000)
	tests := []struct {
		name   string
		tls    bool
		region string
		call   func(t *testing.T, c *s3.Client, key string) error
		// payloadHash says how the body is signed: "hex", UnsignedPayload, a STREAMING-* value.
		payloadHash string
		payload     []byte
		bodyCheck   bool
	}{
		{
			name: "PutObject", payloadHash: "hex", payload: payload, bodyCheck: true,
			call: func(t *testing.T, c *s3.Client, key string) error {
				_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key),
					Body: bytes.NewReader(payload), ContentType: aws.String("application/x-test"),
					Metadata: map[string]string{"Colour": "blue  and   green"}})
				return err
			},
		},
		{
			name: "PutObject over TLS", tls: true, payloadHash: StreamingUnsignedTrailer, payload: payload,
			call: func(t *testing.T, c *s3.Client, key string) error {
				_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key),
					Body: bytes.NewReader(payload), ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme})
				return err
			},
		},
		{
			name: "PutObject empty", payloadHash: "hex", payload: []byte{},
			call: func(t *testing.T, c *s3.Client, key string) error {
				_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key), Body: bytes.NewReader(nil)})
				return err
			},
		},
		{
			name: "GetObject", payloadHash: "hex", region: "auto",
			call: func(t *testing.T, c *s3.Client, key string) error {
				out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key), Range: aws.String("bytes=0-4")})
				if err == nil {
					out.Body.Close()
				}
				return err
			},
		},
		{
			name: "HeadObject", payloadHash: "hex", region: "eu-west-1",
			call: func(t *testing.T, c *s3.Client, key string) error {
				_, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key)})
				return err
			},
		},
		{
			name: "ListObjectsV2", payloadHash: "hex",
			call: func(t *testing.T, c *s3.Client, key string) error {
				_, err := c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("bucket"),
					Prefix: aws.String(key), Delimiter: aws.String("/"), StartAfter: aws.String(key + "+ &=")})
				return err
			},
		},
		{
			name: "DeleteObjects", payloadHash: "hex", bodyCheck: true,
			call: func(t *testing.T, c *s3.Client, key string) error {
				_, err := c.DeleteObjects(t.Context(), &s3.DeleteObjectsInput{Bucket: aws.String("bucket"), Delete: &types.Delete{
					Objects: []types.ObjectIdentifier{{Key: aws.String(key)}, {Key: aws.String("other")}}}})
				return err
			},
		},
		{
			name: "DeleteObject", payloadHash: "hex",
			call: func(t *testing.T, c *s3.Client, key string) error {
				_, err := c.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key)})
				return err
			},
		},
	}
	plain, plainResults := newVerifyServer(t, false)
	secure, secureResults := newVerifyServer(t, true)
	for _, tt := range tests {
		srv, results := plain, plainResults
		if tt.tls {
			srv, results = secure, secureResults
		}
		client := newS3Client(srv, cmpOr(tt.region, "us-east-1"))
		for _, key := range awkwardKeys {
			t.Run(tt.name+"/"+key, func(t *testing.T) {
				if err := tt.call(t, client, key); err != nil {
					t.Fatal(err)
				}
				ins := received(t, results)
				checkVerified(t, ins)
				in := ins[0]
				if got := in.payloadHash; tt.payloadHash == "hex" && !isHexSignature([]byte(got)) || tt.payloadHash != "hex" && got != tt.payloadHash {
					t.Errorf("x-amz-content-sha256 %q, want %s", got, tt.payloadHash)
				}
				if tt.payload != nil && !bytes.Equal(in.payload, tt.payload) {
					t.Errorf("payload: %d bytes, want %d", len(in.payload), len(tt.payload))
				}
				if in.bodyCheck != tt.bodyCheck || in.chunkVerifier {
					t.Errorf("BodyCheck set %v, ChunkVerifier set %v; want %v, false", in.bodyCheck, in.chunkVerifier, tt.bodyCheck)
				}
			})
		}
	}
}

// TestVerifyAWSPresigned verifies URLs from s3.NewPresignClient, used by a plain HTTP client.
func TestVerifyAWSPresigned(t *testing.T) {
	srv, results := newVerifyServer(t, false)
	pc := s3.NewPresignClient(newS3Client(srv, "us-east-1"))
	body := []byte("uploaded through a presigned url")
	for _, key := range awkwardKeys {
		for _, method := range []string{http.MethodGet, http.MethodPut} {
			t.Run(method+"/"+key, func(t *testing.T) {
				var (
					p   *v4.PresignedHTTPRequest
					err error
				)
				if method == http.MethodGet {
					p, err = pc.PresignGetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key),
						ResponseContentDisposition: aws.String(`attachment; filename="a b.txt"`)}, s3.WithPresignExpires(10*time.Minute))
				} else {
					p, err = pc.PresignPutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key)})
				}
				if err != nil {
					t.Fatal(err)
				}
				var rd io.Reader
				if method == http.MethodPut {
					rd = bytes.NewReader(body)
				}
				req, err := http.NewRequestWithContext(t.Context(), p.Method, p.URL, rd)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range p.SignedHeader {
					if k != "Host" {
						req.Header[k] = v
					}
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				ins := received(t, results)
				checkVerified(t, ins)
				if method == http.MethodPut && !bytes.Equal(ins[0].payload, body) {
					t.Errorf("payload %q", ins[0].payload)
				}
				if ins[0].bodyCheck || ins[0].chunkVerifier {
					t.Error("a presigned UNSIGNED-PAYLOAD request got a body check")
				}
			})
		}
	}
}

// TestVerifyMinioGo verifies minio-go, whose signer is its own: over plain HTTP it sends
// PutObject bodies as signed chunks, which must all verify.
func TestVerifyMinioGo(t *testing.T) {
	srv, results := newVerifyServer(t, false)
	newClient := func(t *testing.T, trailing bool) *minio.Client {
		t.Helper()
		mc, err := minio.New(strings.TrimPrefix(srv.URL, "http://"), &minio.Options{
			Creds: miniocreds.NewStaticV4(clientKeyID, clientSecret, ""), Region: "us-east-1",
			BucketLookup: minio.BucketLookupPath, Transport: srv.Client().Transport, MaxRetries: 1,
			TrailingHeaders: trailing,
		})
		if err != nil {
			t.Fatal(err)
		}
		return mc
	}
	const chunk = 64 << 10 // minio-go's chunk size
	tests := []struct {
		name     string
		trailing bool
		size     int
		opts     minio.PutObjectOptions
		mode     string
		trailer  bool
	}{
		{name: "signed chunks", size: 150000, opts: minio.PutObjectOptions{DisableContentSha256: false}, mode: StreamingSigned},
		{name: "one byte", size: 1, mode: StreamingSigned},
		{name: "exactly one chunk", size: chunk, mode: StreamingSigned},
		{name: "signed chunks and trailer", trailing: true, size: 150000,
			opts: minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C, AutoChecksum: minio.ChecksumCRC32C}, mode: StreamingSignedTrailer, trailer: true},
	}
	for _, tt := range tests {
		mc := newClient(t, tt.trailing)
		for _, key := range awkwardKeys {
			t.Run(tt.name+"/"+key, func(t *testing.T) {
				payload := testPayload(tt.size)
				if _, err := mc.PutObject(t.Context(), "bucket", key, bytes.NewReader(payload), int64(len(payload)), tt.opts); err != nil {
					t.Fatal(err)
				}
				ins := received(t, results)
				checkVerified(t, ins)
				in := ins[0]
				if in.payloadHash != tt.mode || !in.chunkVerifier || in.bodyCheck {
					t.Fatalf("x-amz-content-sha256 %s, ChunkVerifier %v, BodyCheck %v; want %s, true, false", in.payloadHash, in.chunkVerifier, in.bodyCheck, tt.mode)
				}
				want := (tt.size+chunk-1)/chunk + 1 // data chunks and the final one
				if tt.trailer {
					want++
				}
				if in.signatures != want {
					t.Errorf("%d signatures verified, want %d", in.signatures, want)
				}
				if !bytes.Equal(in.payload, payload) {
					t.Errorf("payload: %d bytes, want %d", len(in.payload), len(payload))
				}
			})
		}
	}

	mc := newClient(t, false)
	for _, key := range awkwardKeys {
		t.Run("StatObject/"+key, func(t *testing.T) {
			if _, err := mc.StatObject(t.Context(), "bucket", key, minio.StatObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			checkVerified(t, received(t, results))
		})
		t.Run("ListObjects/"+key, func(t *testing.T) {
			for o := range mc.ListObjects(t.Context(), "bucket", minio.ListObjectsOptions{Prefix: key}) {
				if o.Err != nil {
					t.Fatal(o.Err)
				}
			}
			checkVerified(t, received(t, results))
		})
		t.Run("RemoveObject/"+key, func(t *testing.T) {
			if err := mc.RemoveObject(t.Context(), "bucket", key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			checkVerified(t, received(t, results))
		})
		t.Run("PresignedGetObject/"+key, func(t *testing.T) {
			u, err := mc.PresignedGetObject(t.Context(), "bucket", key, time.Hour, url.Values{"response-content-type": {"text/plain; charset=utf-8"}})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u.String(), nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			checkVerified(t, received(t, results))
		})
	}
}

// Fixed signing material for requests built by hand.
var signedAt = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// serverRequest returns req as a server reads it off the wire: Host in r.Host, canonical
// header names, the path decoded with RawPath kept, the body streaming.
func serverRequest(t testing.TB, req *http.Request) *http.Request {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// outgoing builds a client request for path (decoded) and query, escaped the AWS way.
func outgoing(t testing.TB, method, path, rawQuery string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://signet.test:8080/", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Path, req.URL.RawPath, req.URL.RawQuery = path, EscapePath(path), rawQuery
	return req
}

// headerSigned signs req with the SDK (through Signer) at at and returns the server's view.
func headerSigned(t testing.TB, req *http.Request, secret, region, payloadHash string, at time.Time) *http.Request {
	t.Helper()
	c := aws.Credentials{AccessKeyID: clientKeyID, SecretAccessKey: secret}
	if err := NewSigner().Sign(t.Context(), req, c, region, payloadHash, at); err != nil {
		t.Fatal(err)
	}
	return serverRequest(t, req)
}

// presigned presigns req with the SDK for expires seconds and returns the server's view.
func presigned(t testing.TB, req *http.Request, secret string, expires int, at time.Time) *http.Request {
	t.Helper()
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(expires))
	req.URL.RawQuery = q.Encode()
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	u, _, err := s.PresignHTTP(t.Context(), aws.Credentials{AccessKeyID: clientKeyID, SecretAccessKey: secret},
		req, UnsignedPayload, "s3", "us-east-1", at, func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true })
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	req.URL = parsed
	return serverRequest(t, req)
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hasHex64 reports whether s holds 64 hex digits in a row: something like a signature.
func hasHex64(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if _, ok := unhexDigit(s[i]); ok {
			if run++; run >= 64 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// checkVerifyError checks err against status and code, and that it gives nothing away.
func checkVerifyError(t *testing.T, err error, status int, code string) {
	t.Helper()
	if status == 0 {
		if err != nil {
			t.Fatalf("Verify: %v, want success", err)
		}
		return
	}
	ve, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("Verify: %v, want a *Error %d %s", err, status, code)
	}
	if ve.Status != status || ve.Code != code {
		t.Errorf("Verify: %d %s (%s), want %d %s", ve.Status, ve.Code, ve.Message, status, code)
	}
	if msg := err.Error(); hasHex64(msg) || strings.Contains(msg, clientSecret) || strings.Contains(msg, clientWrongSecret) {
		t.Errorf("error message gives away a signature or secret: %s", msg)
	}
	if ve.Message == "" || strings.ToLower(ve.Message[:1]) != ve.Message[:1] {
		t.Errorf("message %q: want a lowercase message", ve.Message)
	}
}

// replaceAuthField rewrites one field (Credential, SignedHeaders, Signature) of the
// Authorization header.
func replaceAuthField(r *http.Request, field, value string) {
	authz := r.Header.Get("Authorization")
	i := strings.Index(authz, field+"=")
	j := strings.IndexByte(authz[i:], ',')
	if j < 0 {
		j = len(authz) - i
	}
	r.Header.Set("Authorization", authz[:i]+field+"="+value+authz[i+j:])
}

func TestVerifyHeaderSigned(t *testing.T) {
	body := []byte("hello, verified world")
	const key = "/bucket/dir//a b+c:é~%.txt"
	base := func(t *testing.T, secret, region string) *http.Request {
		req := outgoing(t, http.MethodPut, key, "x-id=PutObject&tagging=a%20b", body)
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("X-Amz-Meta-Colour", "blue")
		req.Header.Set("User-Agent", "signed-agent/1.0")
		return headerSigned(t, req, secret, region, hexSHA256(body), signedAt)
	}
	at := func(d time.Duration) func(*VerifierOptions) {
		return func(o *VerifierOptions) { o.Now = func() time.Time { return signedAt.Add(d) } }
	}
	tests := []struct {
		name    string
		region  string
		secret  string // default clientSecret
		mutate  func(r *http.Request)
		opts    func(*VerifierOptions)
		secrets func(string) (string, bool)
		status  int
		code    string
	}{
		{name: "valid"},
		{name: "region auto", region: "auto"},
		{name: "empty region", region: "-"},
		{name: "region eu-west-1", region: "eu-west-1"},
		{name: "ten minutes late", opts: at(10 * time.Minute)},
		{name: "ten minutes early", opts: at(-10 * time.Minute)},
		{name: "wrong secret", secret: clientWrongSecret, status: 403, code: "SignatureDoesNotMatch"},
		{name: "unknown key", secrets: secretsOf("OTHER", clientSecret), status: 403, code: "InvalidAccessKeyId"},
		{name: "altered signed header", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Meta-Colour", "red") }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "altered content-type", mutate: func(r *http.Request) { r.Header.Set("Content-Type", "text/html") }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "altered user-agent, unsigned", mutate: func(r *http.Request) { r.Header.Set("User-Agent", "other") }},
		{name: "altered content-length", mutate: func(r *http.Request) { r.Header.Set("Content-Length", "22"); r.ContentLength = 22 }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "altered payload hash", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", hexSHA256([]byte("other"))) }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "payload hash turned unsigned", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload) }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "signed header value repeated", mutate: func(r *http.Request) { r.Header.Add("X-Amz-Meta-Colour", "blue") }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "extra spaces in a signed header", mutate: func(r *http.Request) { r.Header.Set("Content-Type", "  text/plain  ") }},
		{name: "unsigned header added", mutate: func(r *http.Request) { r.Header.Set("Cache-Control", "no-cache") }},
		{name: "unsigned x-amz header added", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Meta-Extra", "1") }, status: 403, code: "AccessDenied"},
		{name: "unsigned x-amz-copy-source added", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Copy-Source", "/other/key") }, status: 403, code: "AccessDenied"},
		{name: "signed header removed", mutate: func(r *http.Request) { r.Header.Del("X-Amz-Meta-Colour") }, status: 403, code: "AccessDenied"},
		{name: "altered query value", mutate: func(r *http.Request) { r.URL.RawQuery = "x-id=PutObject&tagging=a%20c" }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "query parameter added", mutate: func(r *http.Request) { r.URL.RawQuery += "&versionId=1" }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "query parameter removed", mutate: func(r *http.Request) { r.URL.RawQuery = "x-id=PutObject" }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "query spelled otherwise", mutate: func(r *http.Request) { r.URL.RawQuery = "tagging=a+b&x-id=Put%4Fbject" }},
		{name: "query not url encoding", mutate: func(r *http.Request) { r.URL.RawQuery += "&a=%zz" }, status: 400, code: "InvalidArgument"},
		{name: "altered path", mutate: func(r *http.Request) { r.URL.Path = strings.Replace(r.URL.Path, "b+c", "b c", 1) }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "path with a slash less", mutate: func(r *http.Request) { r.URL.Path = strings.Replace(r.URL.Path, "//", "/", 1) }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "path spelled otherwise", mutate: func(r *http.Request) { r.URL.RawPath = strings.Replace(r.URL.RawPath, "%2B", "+", 1) }},
		{name: "altered method", mutate: func(r *http.Request) { r.Method = http.MethodPost }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "altered host", mutate: func(r *http.Request) { r.Host = "other.test:8080" }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "clock 20 minutes ahead", opts: at(20 * time.Minute), status: 403, code: "RequestTimeTooSkewed"},
		{name: "clock 20 minutes behind", opts: at(-20 * time.Minute), status: 403, code: "RequestTimeTooSkewed"},
		{name: "MaxSkew 5m", opts: func(o *VerifierOptions) { at(6 * time.Minute)(o); o.MaxSkew = 5 * time.Minute }, status: 403, code: "RequestTimeTooSkewed"},
		{name: "altered x-amz-date", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20260304T050608Z") }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "x-amz-date another day", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20260305T050607Z") }, opts: at(0), status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "x-amz-date not ISO 8601", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Date", "Wed, 04 Mar 2026 05:06:07 GMT") }, status: 403, code: "AccessDenied"},
		{name: "x-amz-date missing", mutate: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, status: 403, code: "AccessDenied"},
		{name: "x-amz-date not signed", mutate: func(r *http.Request) {
			replaceAuthField(r, "SignedHeaders", "content-length;content-type;host;x-amz-content-sha256;x-amz-meta-colour")
		}, status: 403, code: "AccessDenied"},
		{name: "no authentication", mutate: func(r *http.Request) { r.Header.Del("Authorization") }, status: 403, code: "AccessDenied"},
		{name: "sigv2 header", mutate: func(r *http.Request) { r.Header.Set("Authorization", "AWS "+clientKeyID+":c2lnbmF0dXJl") }, status: 400, code: "InvalidRequest"},
		{name: "sigv4a header", mutate: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
		}, status: 400, code: "InvalidRequest"},
		{name: "unknown scheme", mutate: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, status: 400, code: "InvalidArgument"},
		{name: "empty authorization", mutate: func(r *http.Request) { r.Header.Set("Authorization", "") }, status: 400, code: "InvalidArgument"},
		{name: "two authorization headers", mutate: func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "header and query authentication", mutate: func(r *http.Request) { r.URL.RawQuery += "&X-Amz-Algorithm=AWS4-HMAC-SHA256" }, status: 400, code: "InvalidArgument"},
		{name: "no signature field", mutate: func(r *http.Request) {
			authz := r.Header.Get("Authorization")
			r.Header.Set("Authorization", authz[:strings.Index(authz, ", Signature=")])
		}, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "field twice", mutate: func(r *http.Request) {
			r.Header.Set("Authorization", r.Header.Get("Authorization")+", SignedHeaders=host")
		}, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "unknown field", mutate: func(r *http.Request) { r.Header.Set("Authorization", r.Header.Get("Authorization")+", Foo=bar") }, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "fields without spaces", mutate: func(r *http.Request) {
			r.Header.Set("Authorization", strings.ReplaceAll(r.Header.Get("Authorization"), ", ", ","))
		}},
		{name: "credential too short", mutate: func(r *http.Request) { replaceAuthField(r, "Credential", clientKeyID+"/20260304/s3/aws4_request") }, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "wrong service", mutate: func(r *http.Request) {
			replaceAuthField(r, "Credential", clientKeyID+"/20260304/us-east-1/ec2/aws4_request")
		}, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "wrong terminator", mutate: func(r *http.Request) { replaceAuthField(r, "Credential", clientKeyID+"/20260304/us-east-1/s3/aws4") }, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "credential date not a date", mutate: func(r *http.Request) {
			replaceAuthField(r, "Credential", clientKeyID+"/2026034/us-east-1/s3/aws4_request")
		}, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "no access key id", mutate: func(r *http.Request) { replaceAuthField(r, "Credential", "/20260304/us-east-1/s3/aws4_request") }, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "signature too short", mutate: func(r *http.Request) { replaceAuthField(r, "Signature", strings.Repeat("a", 63)) }, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "signature not hex", mutate: func(r *http.Request) { replaceAuthField(r, "Signature", strings.Repeat("g", 64)) }, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "other signature", mutate: func(r *http.Request) { replaceAuthField(r, "Signature", strings.Repeat("a", 64)) }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "host not signed", mutate: func(r *http.Request) { replaceAuthField(r, "SignedHeaders", "x-amz-date") }, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "signed headers in capitals", mutate: func(r *http.Request) { replaceAuthField(r, "SignedHeaders", "Host;X-Amz-Date") }, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "signed header listed twice", mutate: func(r *http.Request) { replaceAuthField(r, "SignedHeaders", "host;host;x-amz-date") }, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "x-amz-content-sha256 missing", mutate: func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") }, status: 400, code: "InvalidRequest"},
		{name: "x-amz-content-sha256 twice", mutate: func(r *http.Request) { r.Header.Add("X-Amz-Content-Sha256", UnsignedPayload) }, status: 400, code: "InvalidArgument"},
		{name: "x-amz-content-sha256 not a hash", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "abc") }, status: 400, code: "InvalidArgument"},
		{name: "sigv4a streaming", mutate: func(r *http.Request) {
			r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")
		}, status: 501, code: "NotImplemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			region := cmpOr(tt.region, "us-east-1")
			if region == "-" {
				region = ""
			}
			r := base(t, cmpOr(tt.secret, clientSecret), region)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			opts, secrets := tt.opts, tt.secrets
			if opts == nil {
				opts = at(time.Minute)
			}
			if secrets == nil {
				secrets = secretsOf(clientKeyID, clientSecret)
			}
			ver, err := NewVerifier(secrets, opts).Verify(r)
			checkVerifyError(t, err, tt.status, tt.code)
			if err != nil {
				return
			}
			if ver.AccessKeyID != clientKeyID || ver.BodyCheck == nil || ver.ChunkVerifier != nil {
				t.Fatalf("Verified %+v: want %s with a BodyCheck", ver, clientKeyID)
			}
			got, err := io.ReadAll(ver.BodyCheck(r.Body))
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("body through BodyCheck: %q, %v", got, err)
			}
		})
	}
}

// setQuery sets (or, with no values, deletes) a query parameter of a server request.
func setQuery(r *http.Request, name string, values ...string) {
	q := r.URL.Query()
	if len(values) == 0 {
		q.Del(name)
	} else {
		q[name] = values
	}
	r.URL.RawQuery = q.Encode()
}

func TestVerifyPresigned(t *testing.T) {
	const path = "/bucket/x:y@z=1&2 é//~"
	base := func(t *testing.T, secret string, expires int) *http.Request {
		req := outgoing(t, http.MethodGet, path, "response-content-type=text%2Fplain&versionId=v1", nil)
		return presigned(t, req, secret, expires, signedAt)
	}
	at := func(d time.Duration) func(*VerifierOptions) {
		return func(o *VerifierOptions) { o.Now = func() time.Time { return signedAt.Add(d) } }
	}
	tests := []struct {
		name    string
		secret  string
		expires int // default 3600
		mutate  func(r *http.Request)
		opts    func(*VerifierOptions)
		secrets func(string) (string, bool)
		status  int
		code    string
	}{
		{name: "valid"},
		{name: "valid to its last second", opts: at(time.Hour)},
		{name: "a week", expires: 604800, opts: at(6 * 24 * time.Hour)},
		{name: "clock a little behind", opts: at(-5 * time.Minute)},
		{name: "expired", opts: at(time.Hour + time.Second), status: 403, code: "AccessDenied"},
		{name: "not valid yet", opts: at(-20 * time.Minute), status: 403, code: "AccessDenied"},
		{name: "X-Amz-Expires over a week", expires: 604801, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "X-Amz-Expires huge", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Expires", "99999999999999999999") }, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "X-Amz-Expires negative", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Expires", "-1") }, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "X-Amz-Expires not a number", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Expires", "1h") }, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "wrong secret", secret: clientWrongSecret, status: 403, code: "SignatureDoesNotMatch"},
		{name: "unknown key", secrets: secretsOf("OTHER", clientSecret), status: 403, code: "InvalidAccessKeyId"},
		{name: "lifetime extended", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Expires", "7200") }, opts: at(90 * time.Minute), status: 403, code: "SignatureDoesNotMatch"},
		{name: "altered X-Amz-Date", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Date", "20260304T050608Z") }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "altered query", mutate: func(r *http.Request) { setQuery(r, "response-content-type", "text/html") }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "query parameter added", mutate: func(r *http.Request) { setQuery(r, "partNumber", "1") }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "query parameter removed", mutate: func(r *http.Request) { setQuery(r, "versionId") }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "payload hash added to the query", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Content-Sha256", UnsignedPayload) }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "altered path", mutate: func(r *http.Request) { r.URL.Path += "x" }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "altered method", mutate: func(r *http.Request) { r.Method = http.MethodDelete }, status: 403, code: "SignatureDoesNotMatch"},
		{name: "signed headers widened", mutate: func(r *http.Request) {
			setQuery(r, "X-Amz-SignedHeaders", "host;x-amz-meta-a")
			r.Header.Set("X-Amz-Meta-A", "1")
		}, status: 403, code: "SignatureDoesNotMatch"},
		{name: "unsigned x-amz header", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Acl", "public-read") }, status: 403, code: "AccessDenied"},
		{name: "unsigned header", mutate: func(r *http.Request) { r.Header.Set("Range", "bytes=0-1") }},
		{name: "X-Amz-Signature missing", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Signature") }, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "X-Amz-Signature twice", mutate: func(r *http.Request) {
			q := r.URL.Query()
			setQuery(r, "X-Amz-Signature", q.Get("X-Amz-Signature"), q.Get("X-Amz-Signature"))
		}, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "X-Amz-Date missing", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Date") }, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "X-Amz-Date malformed", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Date", "2026-03-04T05:06:07Z") }, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "wrong algorithm", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Algorithm", "AWS4-HMAC-SHA1") }, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "sigv4a", mutate: func(r *http.Request) { setQuery(r, "X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256") }, status: 400, code: "InvalidRequest"},
		{name: "wrong service", mutate: func(r *http.Request) {
			setQuery(r, "X-Amz-Credential", clientKeyID+"/20260304/us-east-1/sts/aws4_request")
		}, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "and an Authorization header", mutate: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x") }, status: 400, code: "InvalidArgument"},
		{name: "sigv2 query", mutate: func(r *http.Request) {
			r.URL.RawQuery = "AWSAccessKeyId=" + clientKeyID + "&Expires=1767000000&Signature=c2lnbmF0dXJl"
		}, status: 400, code: "InvalidRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expires := tt.expires
			if expires == 0 {
				expires = 3600
			}
			r := base(t, cmpOr(tt.secret, clientSecret), expires)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			opts, secrets := tt.opts, tt.secrets
			if opts == nil {
				opts = at(time.Minute)
			}
			if secrets == nil {
				secrets = secretsOf(clientKeyID, clientSecret)
			}
			ver, err := NewVerifier(secrets, opts).Verify(r)
			checkVerifyError(t, err, tt.status, tt.code)
			if err == nil && (ver.AccessKeyID != clientKeyID || ver.BodyCheck != nil || ver.ChunkVerifier != nil) {
				t.Fatalf("Verified %+v", ver)
			}
		})
	}
	t.Run("messages", func(t *testing.T) {
		v := NewVerifier(secretsOf(clientKeyID, clientSecret), at(2*time.Hour))
		_, err := v.Verify(base(t, clientSecret, 3600))
		if ve, ok := errors.AsType[*Error](err); !ok || ve.Message != "request has expired" {
			t.Errorf("expired: %v", err)
		}
	})
}

// TestVerifyAnonymous: a request with no signature at all.
func TestVerifyAnonymous(t *testing.T) {
	r := serverRequest(t, outgoing(t, http.MethodGet, "/bucket/key", "list-type=2", nil))
	_, err := NewVerifier(secretsOf(clientKeyID, clientSecret)).Verify(r)
	checkVerifyError(t, err, 403, "AccessDenied")
	if !strings.Contains(err.Error(), "anonymous requests are not allowed") {
		t.Errorf("message: %v", err)
	}
}

// referenceSignature signs a request by hand, following the AWS documentation, so that
// requests the SDK cannot produce (signed User-Agent, as the Java SDK v1 sends) can be
// checked. headers are name, value pairs; every one is signed.
func referenceSignature(method, path, canonicalQuery string, headers [][2]string, payloadHash, secret string, at time.Time) (signedHeaders, signature string) {
	var names []string
	var canon strings.Builder
	for _, h := range headers {
		names = append(names, h[0])
		fmt.Fprintf(&canon, "%s:%s\n", h[0], h[1])
	}
	signedHeaders = strings.Join(names, ";")
	creq := strings.Join([]string{method, EscapePath(path), canonicalQuery, canon.String(), signedHeaders, payloadHash}, "\n")
	chain := newSigChain(secret, "us-east-1", at, "")
	sts := strings.Join([]string{"AWS4-HMAC-SHA256", chain.date, chain.scope, hexSHA256([]byte(creq))}, "\n")
	return signedHeaders, hex.EncodeToString(hmacSHA256(chain.key, sts))
}

// TestVerifyHeadersTheSDKDoesNotSign: some clients sign User-Agent or Expect, which the
// SDK's signer skips by default; the verifier still covers them.
func TestVerifyHeadersTheSDKDoesNotSign(t *testing.T) {
	amzDate := signedAt.Format("20060102T150405Z")
	headers := [][2]string{
		{"expect", "100-continue"},
		{"host", "signet.test:8080"},
		{"user-agent", "aws-sdk-java/1.12.0 Linux"},
		{"x-amz-content-sha256", UnsignedPayload},
		{"x-amz-date", amzDate},
	}
	signed, sig := referenceSignature(http.MethodPut, "/bucket/k y", "", headers, UnsignedPayload, clientSecret, signedAt)
	build := func() *http.Request {
		req := outgoing(t, http.MethodPut, "/bucket/k y", "", []byte("data"))
		req.Header.Set("Expect", "100-continue")
		req.Header.Set("User-Agent", "aws-sdk-java/1.12.0 Linux")
		req.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
		req.Header.Set("X-Amz-Date", amzDate)
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+clientKeyID+"/20260304/us-east-1/s3/aws4_request, SignedHeaders="+signed+", Signature="+sig)
		return serverRequest(t, req)
	}
	v := NewVerifier(secretsOf(clientKeyID, clientSecret), func(o *VerifierOptions) { o.Now = func() time.Time { return signedAt } })
	if _, err := v.Verify(build()); err != nil {
		t.Fatalf("as signed: %v", err)
	}
	r := build()
	r.Header.Set("User-Agent", "other")
	_, err := v.Verify(r)
	checkVerifyError(t, err, 403, "SignatureDoesNotMatch")

	// A signed content-length of 0 is beyond the SDK's signer: said so, not a bare mismatch.
	r = build()
	r.Header.Set("Content-Length", "0")
	replaceAuthField(r, "SignedHeaders", "content-length;"+signed)
	_, err = v.Verify(r)
	checkVerifyError(t, err, 403, "SignatureDoesNotMatch")
	if !strings.Contains(err.Error(), "content-length of 0") {
		t.Errorf("message: %v", err)
	}
}

// TestVerifySecretChangeNeverMeetsAStaleKey: the SDK caches derived keys by access key id
// and day; a secret replaced under the same id must take effect at once.
func TestVerifySecretChangeNeverMeetsAStaleKey(t *testing.T) {
	secret := "first-secret"
	v := NewVerifier(func(id string) (string, bool) { return secret, id == clientKeyID },
		func(o *VerifierOptions) { o.Now = func() time.Time { return signedAt } })
	sign := func(s string) *http.Request {
		return headerSigned(t, outgoing(t, http.MethodGet, "/bucket/key", "", nil), s, "us-east-1", UnsignedPayload, signedAt)
	}
	if _, err := v.Verify(sign("first-secret")); err != nil {
		t.Fatal(err)
	}
	secret = "second-secret"
	if _, err := v.Verify(sign("second-secret")); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	_, err := v.Verify(sign("first-secret"))
	checkVerifyError(t, err, 403, "SignatureDoesNotMatch")
}

func TestVerifyBodyCheck(t *testing.T) {
	payload := testPayload(100000)
	at := func(o *VerifierOptions) { o.Now = func() time.Time { return signedAt } }
	v := NewVerifier(secretsOf(clientKeyID, clientSecret), at)
	// put signs a PUT declaring payloadHash and sends body.
	put := func(t *testing.T, body []byte, payloadHash string) *http.Request {
		req := outgoing(t, http.MethodPut, "/bucket/key", "", body)
		return headerSigned(t, req, clientSecret, "us-east-1", payloadHash, signedAt)
	}
	verified := func(t *testing.T, r *http.Request) *Verified {
		t.Helper()
		ver, err := v.Verify(r)
		if err != nil {
			t.Fatal(err)
		}
		return ver
	}

	t.Run("matching body", func(t *testing.T) {
		for _, w := range sourceWrappers {
			for _, size := range readSizes {
				ver := verified(t, put(t, payload, hexSHA256(payload)))
				if ver.BodyCheck == nil {
					t.Fatal("no BodyCheck for a hex payload hash")
				}
				got, err := readChunked(t, ver.BodyCheck(w.wrap(bytes.NewReader(payload))), size, int64(len(payload)))
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("%s, reads of %d: %d bytes, %v", w.name, size, len(got), err)
				}
			}
		}
	})

	for _, at := range []int{0, 5000, len(payload) - 1} {
		t.Run(fmt.Sprintf("byte %d altered", at), func(t *testing.T) {
			tampered := bytes.Clone(payload)
			tampered[at] ^= 1
			for _, w := range sourceWrappers {
				for _, size := range readSizes {
					// The signature covers the hash, not the body: Verify passes, the body fails.
					ver := verified(t, put(t, tampered, hexSHA256(payload)))
					// Not r.Body: iotest.DataErrReader drops data that comes with io.EOF.
					got, err := readChunked(t, ver.BodyCheck(w.wrap(bytes.NewReader(tampered))), size, int64(len(payload)))
					be, ok := errors.AsType[*Error](err)
					if !ok || be.Status != 400 || be.Code != "XAmzContentSHA256Mismatch" {
						t.Fatalf("%s, reads of %d: %v, want 400 XAmzContentSHA256Mismatch", w.name, size, err)
					}
					if !bytes.Equal(got, tampered[:len(tampered)-1]) {
						t.Fatalf("%s, reads of %d: %d bytes came through, want all but the last", w.name, size, len(got))
					}
				}
			}
		})
	}

	t.Run("body ends early", func(t *testing.T) {
		ver := verified(t, put(t, payload, hexSHA256(payload)))
		src := io.MultiReader(bytes.NewReader(payload[:5000]), iotest.ErrReader(io.ErrUnexpectedEOF))
		got, err := readChunked(t, ver.BodyCheck(src), 4096, int64(len(payload)))
		if be, ok := errors.AsType[*Error](err); !ok || be.Code != "IncompleteBody" || len(got) != 4999 {
			t.Fatalf("%d bytes, %v; want 4999 and IncompleteBody", len(got), err)
		}
	})

	t.Run("source error", func(t *testing.T) {
		boom := errors.New("connection reset")
		ver := verified(t, put(t, payload, hexSHA256(payload)))
		src := io.MultiReader(bytes.NewReader(payload[:5000]), iotest.ErrReader(boom))
		got, err := readChunked(t, ver.BodyCheck(src), 4096, int64(len(payload)))
		if !errors.Is(err, boom) || len(got) >= 5000 {
			t.Fatalf("%d bytes, %v", len(got), err)
		}
	})

	t.Run("body of unknown length", func(t *testing.T) {
		req := outgoing(t, http.MethodPut, "/bucket/key", "", nil)
		req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(payload))) // sent chunked
		r := headerSigned(t, req, clientSecret, "us-east-1", hexSHA256(payload), signedAt)
		if r.ContentLength != -1 {
			t.Fatalf("ContentLength %d", r.ContentLength)
		}
		ver := verified(t, r)
		if got, err := io.ReadAll(ver.BodyCheck(r.Body)); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("%d bytes, %v", len(got), err)
		}
	})

	t.Run("empty body, hash of the empty string", func(t *testing.T) {
		if ver := verified(t, put(t, nil, hexSHA256(nil))); ver.BodyCheck != nil {
			t.Error("BodyCheck for an empty body")
		}
	})

	t.Run("empty body, hash of something", func(t *testing.T) {
		_, err := v.Verify(put(t, nil, hexSHA256(payload)))
		checkVerifyError(t, err, 400, "XAmzContentSHA256Mismatch")
	})

	t.Run("unsigned payload", func(t *testing.T) {
		if ver := verified(t, put(t, payload, UnsignedPayload)); ver.BodyCheck != nil || ver.ChunkVerifier != nil {
			t.Error("body checks for UNSIGNED-PAYLOAD")
		}
	})

	t.Run("unsigned trailer", func(t *testing.T) {
		body := encodeChunked(payload, frame{mode: StreamingUnsignedTrailer, trailers: []trailerLine{{name: "x-amz-checksum-crc32"}}})
		req := outgoing(t, http.MethodPut, "/bucket/key", "", body)
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		ver := verified(t, headerSigned(t, req, clientSecret, "us-east-1", StreamingUnsignedTrailer, signedAt))
		if ver.BodyCheck != nil || ver.ChunkVerifier != nil {
			t.Error("signature checks for STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		}
	})
}

// chunkFrames splits an aws-chunked body into its chunks (size line, data, CRLF) and what
// follows the final chunk's size line.
func chunkFrames(t *testing.T, body []byte) (chunks [][]byte, final []byte) {
	t.Helper()
	for len(body) > 0 {
		line, _, ok := bytes.Cut(body, []byte("\r\n"))
		if !ok {
			t.Fatalf("no size line in %q", body)
		}
		sizeField, _, _ := bytes.Cut(line, []byte(";"))
		size, err := strconv.ParseInt(string(sizeField), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		if size == 0 {
			return chunks, body
		}
		n := len(line) + 2 + int(size) + 2
		chunks = append(chunks, body[:n:n])
		body = body[n:]
	}
	t.Fatal("no final chunk")
	return nil, nil
}

func TestVerifyChunkSignatures(t *testing.T) {
	payload := testPayload(150000) // minio-go's chunks: 65536, 65536, 18928, then the final one
	at := func(o *VerifierOptions) { o.Now = func() time.Time { return signedAt.Add(time.Minute) } }
	v := NewVerifier(secretsOf(clientKeyID, clientSecret), at)
	// signed returns a request framed and signed by minio-go at signedAt, and its body.
	signed := func(t *testing.T, trailer bool) (*http.Request, []byte) {
		req, err := http.NewRequest(http.MethodPut, "http://signet.test/bucket/chunked key+1", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(payload))
		if trailer {
			req.Trailer = http.Header{"x-amz-checksum-crc32": {refChecksum("x-amz-checksum-crc32", payload)}}
		}
		req = miniosigner.StreamingSignV4(req, clientKeyID, clientSecret, "", "us-east-1", int64(len(payload)), signedAt, sha256Hasher{sha256.New()})
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		req.Trailer = nil
		return req, body
	}
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 1
		return b
	}
	sigOffset := func(frame []byte) int {
		return bytes.Index(frame, []byte("chunk-signature=")) + len("chunk-signature=") + 10
	}
	tests := []struct {
		name    string
		trailer bool
		mutate  func(chunks [][]byte, final []byte) ([][]byte, []byte)
		// verified is how many signatures verify before the failure; -1 means no failure.
		verified int
	}{
		{name: "valid", verified: -1},
		{name: "valid with trailer", trailer: true, verified: -1},
		{name: "one byte of chunk 2 altered", verified: 1, mutate: func(c [][]byte, f []byte) ([][]byte, []byte) {
			c[1] = flip(c[1], bytes.Index(c[1], []byte("\r\n"))+2+1000)
			return c, f
		}},
		{name: "last byte of chunk 3 altered", verified: 2, mutate: func(c [][]byte, f []byte) ([][]byte, []byte) {
			c[2] = flip(c[2], len(c[2])-3)
			return c, f
		}},
		{name: "chunk 1 signature altered", verified: 0, mutate: func(c [][]byte, f []byte) ([][]byte, []byte) {
			c[0] = flip(c[0], sigOffset(c[0]))
			return c, f
		}},
		{name: "chunks 1 and 2 swapped", verified: 0, mutate: func(c [][]byte, f []byte) ([][]byte, []byte) {
			c[0], c[1] = c[1], c[0]
			return c, f
		}},
		{name: "final chunk signature altered", verified: 3, mutate: func(c [][]byte, f []byte) ([][]byte, []byte) {
			return c, flip(f, sigOffset(f))
		}},
		{name: "trailer value altered", trailer: true, verified: 4, mutate: func(c [][]byte, f []byte) ([][]byte, []byte) {
			return c, flip(f, bytes.Index(f, []byte("x-amz-checksum-crc32:"))+len("x-amz-checksum-crc32:"))
		}},
		{name: "trailer signature altered", trailer: true, verified: 4, mutate: func(c [][]byte, f []byte) ([][]byte, []byte) {
			return c, flip(f, bytes.Index(f, []byte("x-amz-trailer-signature:"))+len("x-amz-trailer-signature:")+3)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, body := signed(t, tt.trailer)
			chunks, final := chunkFrames(t, body)
			if len(chunks) != 3 {
				t.Fatalf("%d chunks", len(chunks))
			}
			if tt.mutate != nil {
				chunks, final = tt.mutate(chunks, final)
			}
			body = append(bytes.Join(chunks, nil), final...)
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			r := serverRequest(t, req)

			ver, err := v.Verify(r)
			if err != nil {
				t.Fatal(err)
			}
			if ver.ChunkVerifier == nil || ver.BodyCheck != nil {
				t.Fatalf("Verified %+v: want a ChunkVerifier only", ver)
			}
			got, verifiedSigs, err := readVerifiedBody(r, ver)
			if tt.verified < 0 {
				want := 4
				if tt.trailer {
					want = 5
				}
				if err != nil || !bytes.Equal(got, payload) || verifiedSigs != want {
					t.Fatalf("%d bytes, %d signatures verified, %v", len(got), verifiedSigs, err)
				}
				return
			}
			be, ok := errors.AsType[*Error](err)
			if !ok || be.Status != 403 || be.Code != "SignatureDoesNotMatch" {
				t.Fatalf("%v, want 403 SignatureDoesNotMatch", err)
			}
			if verifiedSigs != tt.verified {
				t.Errorf("failed after %d signatures verified, want %d", verifiedSigs, tt.verified)
			}
			if len(got) >= len(payload) {
				t.Error("the whole payload came through")
			}
			if msg := err.Error(); hasHex64(msg) || strings.Contains(msg, clientSecret) {
				t.Errorf("error gives away a signature or secret: %s", msg)
			}
		})
	}

	t.Run("each ChunkVerifier call starts the chain again", func(t *testing.T) {
		req, body := signed(t, true)
		req.Body = io.NopCloser(bytes.NewReader(body))
		r := serverRequest(t, req)
		ver, err := v.Verify(r)
		if err != nil {
			t.Fatal(err)
		}
		opts, _, err := ChunkedOptionsFromHeader(r.Header)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			o := opts
			ver.ChunkVerifier(&o)
			got, err := io.ReadAll(NewChunkedReader(bytes.NewReader(body), o))
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("decode %d: %d bytes, %v", i, len(got), err)
			}
		}
	})

	t.Run("wrong secret fails at the seed", func(t *testing.T) {
		req, body := signed(t, false)
		req.Body = io.NopCloser(bytes.NewReader(body))
		_, err := NewVerifier(secretsOf(clientKeyID, clientWrongSecret), at).Verify(serverRequest(t, req))
		checkVerifyError(t, err, 403, "SignatureDoesNotMatch")
	})
}

func BenchmarkVerify(b *testing.B) {
	req := outgoing(b, http.MethodGet, "/bucket/dir/a b+c.txt", "versionId=v1", nil)
	req.Header.Set("Range", "bytes=0-1023")
	r := headerSigned(b, req, clientSecret, "us-east-1", hexSHA256(nil), signedAt)
	v := NewVerifier(secretsOf(clientKeyID, clientSecret), func(o *VerifierOptions) { o.Now = func() time.Time { return signedAt } })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
