package signer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	miniosigner "github.com/minio/minio-go/v7/pkg/signer"
)

// fuzzRequest is a request as the fuzzer mutates it: fields of its wire form.
type fuzzRequest struct {
	method, target, header string
	body                   []byte
}

// parse reads the request the way net/http's server does.
func (fr fuzzRequest) parse() (*http.Request, error) {
	head := fr.method + " " + fr.target + " HTTP/1.1\r\n" + fr.header + "\r\n"
	return http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(head), bytes.NewReader(fr.body))))
}

// fuzzFields serialises a server request into the fuzzer's fields.
func fuzzFields(t testing.TB, r *http.Request) fuzzRequest {
	t.Helper()
	var h strings.Builder
	h.WriteString("Host: " + r.Host + "\r\n")
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range r.Header[k] {
			h.WriteString(k + ": " + v + "\r\n")
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fuzzRequest{method: r.Method, target: r.RequestURI, header: h.String(), body: body}
}

// signedParts is everything a SigV4 signature covers, in canonical form: method, decoded
// path, host, the decoded query (the X-Amz-* parameters of a presigned URL included), the
// Authorization fields, each signed header's values (whitespace runs folded: a superset of
// what SigV4 treats as equal) and the names of all x-amz-* headers sent. Two requests that
// verify with the same key must agree on all of it.
func signedParts(r *http.Request) string {
	var b strings.Builder
	fold := func(v string) string { return strings.Join(strings.Fields(v), " ") }
	b.WriteString(r.Method + "\n" + r.URL.Path + "\n" + fold(r.Host) + "\n")

	q, _ := url.ParseQuery(r.URL.RawQuery)
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	slices.Sort(pairs)
	b.WriteString(strings.Join(pairs, "&") + "\n")

	signed := strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	if authz := r.Header.Get("Authorization"); authz != "" {
		alg, rest, _ := strings.Cut(authz, " ")
		var fields []string
		for f := range strings.SplitSeq(rest, ",") {
			f = strings.TrimSpace(f)
			fields = append(fields, f)
			if v, ok := strings.CutPrefix(f, "SignedHeaders="); ok {
				signed = strings.Split(v, ";")
			}
		}
		slices.Sort(fields)
		b.WriteString(alg + " " + strings.Join(fields, ",") + "\n")
	}
	for _, name := range signed {
		var vals []string
		switch name {
		case "host":
			continue
		case "content-length":
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		default:
			for _, v := range r.Header.Values(name) {
				vals = append(vals, fold(v))
			}
		}
		b.WriteString(name + ":" + strings.Join(vals, ",") + "\n")
	}
	var amz []string
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-") {
			amz = append(amz, strings.ToLower(k))
		}
	}
	slices.Sort(amz)
	b.WriteString(strings.Join(amz, ","))
	return b.String()
}

// providedSignatures returns the signatures r carries, in its Authorization header or query.
func providedSignatures(r *http.Request) []string {
	sigs := r.URL.Query()["X-Amz-Signature"]
	for _, authz := range r.Header.Values("Authorization") {
		if _, sig, ok := strings.Cut(authz, "Signature="); ok {
			sig, _, _ = strings.Cut(sig, ",")
			sigs = append(sigs, strings.TrimSpace(sig))
		}
	}
	return sigs
}

// fuzzSeedRequests are valid signed requests of every kind, signed at signedAt.
func fuzzSeedRequests(f *testing.F) (reqs []fuzzRequest, payloads [][]byte) {
	add := func(r *http.Request, payload []byte) {
		reqs = append(reqs, fuzzFields(f, r))
		payloads = append(payloads, payload)
	}

	get := outgoing(f, http.MethodGet, "/bucket", "list-type=2&prefix=dir%2F%2Fa%20b%2Bc&delimiter=%2F", nil)
	add(headerSigned(f, get, clientSecret, "us-east-1", hexSHA256(nil), signedAt), nil)

	body := []byte("hello, fuzzed world")
	put := outgoing(f, http.MethodPut, "/bucket/x:y@z=1&2 é~%", "x-id=PutObject", body)
	put.Header.Set("Content-Type", "text/plain")
	put.Header.Set("X-Amz-Meta-Colour", "blue")
	add(headerSigned(f, put, clientSecret, "auto", hexSHA256(body), signedAt), body)

	unsigned := outgoing(f, http.MethodPut, "/bucket/a//b", "", body)
	add(headerSigned(f, unsigned, clientSecret, "us-east-1", UnsignedPayload, signedAt), nil)

	pre := outgoing(f, http.MethodGet, "/bucket/q?mark#hash", "response-content-disposition=attachment%3B%20filename%3D%22a%20b%22", nil)
	add(presigned(f, pre, clientSecret, 3600, signedAt), nil)

	payload := testPayload(300)
	chunked, err := http.NewRequest(http.MethodPut, "http://signet.test/bucket/chunked key+1", bytes.NewReader(payload))
	if err != nil {
		f.Fatal(err)
	}
	chunked.ContentLength = int64(len(payload))
	chunked.Trailer = http.Header{"x-amz-checksum-crc32": {refChecksum("x-amz-checksum-crc32", payload)}}
	chunked = miniosigner.StreamingSignV4(chunked, clientKeyID, clientSecret, "", "us-east-1", int64(len(payload)), signedAt, sha256Hasher{sha256.New()})
	framed, err := io.ReadAll(chunked.Body)
	if err != nil {
		f.Fatal(err)
	}
	chunked.Body, chunked.Trailer = io.NopCloser(bytes.NewReader(framed)), nil
	add(serverRequest(f, chunked), payload)
	return reqs, payloads
}

// FuzzVerify mutates valid signed requests. Whatever the input, Verify must not panic; its
// errors are *Error values that give no signature or secret away; and a request that
// verifies must agree with one of the seeds in every signed part (signedParts). When the
// body is signed, a body that reads to its end must be that seed's payload.
func FuzzVerify(f *testing.F) {
	seeds, payloads := fuzzSeedRequests(f)
	v := NewVerifier(secretsOf(clientKeyID, clientSecret), func(o *VerifierOptions) {
		o.Now = func() time.Time { return signedAt.Add(time.Minute) }
	})
	valid := make(map[string][]byte)
	for i, s := range seeds {
		r, err := s.parse()
		if err != nil {
			f.Fatal(err)
		}
		if _, err := v.Verify(r); err != nil {
			f.Fatalf("seed %d does not verify: %v", i, err)
		}
		valid[signedParts(r)] = payloads[i]
		f.Add(s.method, s.target, s.header, s.body)
		// Near misses, as starting points: an unsigned x-amz-* header (must fail), an
		// unsigned ordinary one (may pass).
		f.Add(s.method, s.target, s.header+"X-Amz-Meta-Unsigned: 1\r\n", s.body)
		f.Add(s.method, s.target, s.header+"Cache-Control: no-cache\r\n", s.body)
	}
	f.Add("GET", "/bucket/key", "Host: signet.test\r\nAuthorization: AWS "+clientKeyID+":c2ln\r\n", []byte(nil))
	f.Add("GET", "/bucket/key?AWSAccessKeyId=k&Signature=s&Expires=1", "Host: signet.test\r\n", []byte(nil))

	f.Fuzz(func(t *testing.T, method, target, header string, body []byte) {
		r, err := fuzzRequest{method, target, header, body}.parse()
		if err != nil {
			return // net/http's server would answer 400 before any handler
		}
		ver, err := v.Verify(r)
		if err != nil {
			ve, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("Verify: %v, want a *Error", err)
			}
			if ve.Status < 400 || ve.Code == "" || ve.Message == "" {
				t.Fatalf("Verify: %#v", ve)
			}
			msg := err.Error()
			if strings.Contains(msg, clientSecret) {
				t.Fatalf("error gives away the secret: %s", msg)
			}
			for _, sig := range providedSignatures(r) {
				if len(sig) >= 16 && strings.Contains(msg, sig) {
					t.Fatalf("error echoes the signature: %s", msg)
				}
			}
			return
		}
		parts := signedParts(r)
		payload, ok := valid[parts]
		if !ok {
			t.Fatalf("verified a request that differs from every seed in a signed part:\n%s", parts)
		}
		if ver.AccessKeyID != clientKeyID {
			t.Fatalf("access key id %q", ver.AccessKeyID)
		}

		var src io.Reader
		switch opts, chunked, err := ChunkedOptionsFromHeader(r.Header); {
		case err != nil:
			return
		case chunked && ver.ChunkVerifier != nil:
			ver.ChunkVerifier(&opts)
			src = NewChunkedReader(r.Body, opts)
		case chunked && opts.Mode != StreamingUnsignedTrailer:
			t.Fatalf("%s body without a ChunkVerifier", opts.Mode)
		case ver.BodyCheck != nil:
			src = ver.BodyCheck(r.Body)
		default:
			return
		}
		got, err := io.ReadAll(src)
		if err == nil && !bytes.Equal(got, payload) {
			t.Fatalf("a signed body read to its end as %q, want %q", got, payload)
		}
		if err != nil && len(payload) > 0 && bytes.Equal(got, payload) {
			t.Fatalf("the whole payload came through a body that failed: %v", err)
		}
	})
}
