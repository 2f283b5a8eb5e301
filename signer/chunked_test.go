package signer

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/crc64nvme"
	miniosigner "github.com/minio/minio-go/v7/pkg/signer"
)

// checksumNames are the checksum trailers the decoder verifies.
var checksumNames = []string{
	"x-amz-checksum-crc32",
	"x-amz-checksum-crc32c",
	"x-amz-checksum-crc64nvme",
	"x-amz-checksum-sha1",
	"x-amz-checksum-sha256",
	"x-amz-checksum-sha512",
}

// refChecksum computes a trailer value with the standard library only, independently of the
// decoder's own hashes (hash/crc64 with a plain table for CRC-64/NVME).
func refChecksum(name string, data []byte) string {
	var sum []byte
	switch name {
	case "x-amz-checksum-crc32":
		sum = binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(data))
	case "x-amz-checksum-crc32c":
		sum = binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	case "x-amz-checksum-crc64nvme":
		sum = binary.BigEndian.AppendUint64(nil, crc64.Checksum(data, crc64.MakeTable(0x9a6c9329ac4bc9b5)))
	case "x-amz-checksum-sha1":
		s := sha1.Sum(data)
		sum = s[:]
	case "x-amz-checksum-sha256":
		s := sha256.Sum256(data)
		sum = s[:]
	case "x-amz-checksum-sha512":
		s := sha512.Sum512(data)
		sum = s[:]
	default:
		panic("no checksum " + name)
	}
	return base64.StdEncoding.EncodeToString(sum)
}

func testPayload(n int) []byte {
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(b)
	return b
}

const fakeSignature = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

const emptySHA256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// sigChain computes (and so checks) SigV4 streaming signatures: each chunk's signature signs
// the previous one, starting from the request's seed signature.
type sigChain struct {
	key   []byte
	date  string // 20060102T150405Z
	scope string // 20060102/region/s3/aws4_request
	prev  string
	calls int
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func newSigChain(secret, region string, t time.Time, seed string) *sigChain {
	day := t.Format("20060102")
	key := hmacSHA256([]byte("AWS4"+secret), day)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, "s3")
	key = hmacSHA256(key, "aws4_request")
	return &sigChain{
		key:   key,
		date:  t.Format("20060102T150405Z"),
		scope: day + "/" + region + "/s3/aws4_request",
		prev:  seed,
	}
}

func (c *sigChain) chunkSignature(chunkSHA256 []byte) string {
	sts := strings.Join([]string{"AWS4-HMAC-SHA256-PAYLOAD", c.date, c.scope, c.prev, emptySHA256Hex, hex.EncodeToString(chunkSHA256)}, "\n")
	return hex.EncodeToString(hmacSHA256(c.key, sts))
}

func (c *sigChain) trailerSignature(trailer []byte) string {
	sum := sha256.Sum256(trailer)
	sts := strings.Join([]string{"AWS4-HMAC-SHA256-TRAILER", c.date, c.scope, c.prev, hex.EncodeToString(sum[:])}, "\n")
	return hex.EncodeToString(hmacSHA256(c.key, sts))
}

func (c *sigChain) signChunk(data []byte) string {
	sum := sha256.Sum256(data)
	c.prev = c.chunkSignature(sum[:])
	return c.prev
}

func (c *sigChain) signTrailer(trailer []byte) string {
	c.prev = c.trailerSignature(trailer)
	return c.prev
}

func (c *sigChain) verifyChunk(sig string, chunkSHA256 []byte) error {
	c.calls++
	if want := c.chunkSignature(chunkSHA256); sig != want {
		return fmt.Errorf("chunk %d: signature %s, want %s", c.calls, sig, want)
	}
	c.prev = sig
	return nil
}

func (c *sigChain) verifyTrailer(sig string, trailer []byte) error {
	c.calls++
	if want := c.trailerSignature(trailer); sig != want {
		return fmt.Errorf("trailer %q: signature %s, want %s", trailer, sig, want)
	}
	c.prev = sig
	return nil
}

func testChain() *sigChain {
	return newSigChain("secret", "us-east-1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), strings.Repeat("5e", 32))
}

type trailerLine struct {
	name  string
	value string // "" means the right checksum of the payload
}

// frame says how encodeChunked frames a payload; the zero value is aws-sdk-go-v2's layout.
type frame struct {
	mode     string
	chunk    int    // payload bytes per chunk; 0 means one chunk
	sizeFmt  string // format of chunk sizes; "%x" when empty
	trailers []trailerLine
	eol      string // end of trailer lines; "\r\n" when empty
	colon    string // between trailer name and value; ":" when empty
	minio    bool   // minio-go's layout: an empty line after the trailer lines
	noEnd    bool   // leave out the final empty line
	chain    *sigChain
	badSig   bool // a trailer signature that does not match, or a fake one without chain
}

func encodeChunked(payload []byte, f frame) []byte {
	sizeFmt := cmpOr(f.sizeFmt, "%x")
	eol := cmpOr(f.eol, "\r\n")
	colon := cmpOr(f.colon, ":")
	signed := f.mode != StreamingUnsignedTrailer
	var b []byte
	writeChunk := func(data []byte) {
		b = fmt.Appendf(b, sizeFmt, len(data))
		if signed {
			sig := fakeSignature
			if f.chain != nil {
				sig = f.chain.signChunk(data)
			}
			b = append(b, ";chunk-signature="+sig...)
		}
		b = append(b, "\r\n"...)
		if len(data) > 0 {
			b = append(b, data...)
			b = append(b, "\r\n"...)
		}
	}
	chunk := f.chunk
	if chunk == 0 {
		chunk = max(len(payload), 1)
	}
	for rest := payload; len(rest) > 0; {
		n := min(chunk, len(rest))
		writeChunk(rest[:n])
		rest = rest[n:]
	}
	writeChunk(nil)
	var canon []byte
	for _, t := range f.trailers {
		v := t.value
		if v == "" {
			v = refChecksum(strings.ToLower(t.name), payload)
		}
		b = append(b, t.name+colon+v+eol...)
		canon = append(canon, strings.ToLower(t.name)+":"+strings.TrimSpace(v)+"\n"...)
	}
	if f.minio {
		b = append(b, "\r\n"...)
	}
	if f.mode == StreamingSignedTrailer && len(f.trailers) > 0 {
		sig := fakeSignature
		if f.chain != nil {
			sig = f.chain.signTrailer(canon)
		}
		if f.badSig {
			sig = strings.Repeat("f", 64)
		}
		b = append(b, "x-amz-trailer-signature:"+sig+"\r\n"...)
	}
	if !f.noEnd {
		b = append(b, "\r\n"...)
	}
	return b
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func trailerNames(f frame) []string {
	var names []string
	for _, t := range f.trailers {
		names = append(names, strings.ToLower(t.name))
	}
	return names
}

// readChunked reads r to the end with reads of bufSize bytes, failing the test if a read
// ever returns more than DecodedLength in total or keeps returning nothing.
func readChunked(t *testing.T, r io.Reader, bufSize int, decodedLength int64) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, bufSize)
	for empty := 0; ; {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if decodedLength >= 0 && int64(len(out)) > decodedLength {
			t.Fatalf("read %d bytes, more than the decoded length %d", len(out), decodedLength)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			if empty++; empty > 100 {
				t.Fatal("Read keeps returning 0, nil")
			}
		}
	}
}

// sourceWrappers deliver a body in different pieces, so that every line, CRLF and chunk
// boundary also falls between two reads.
var sourceWrappers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data with EOF", iotest.DataErrReader},
}

var readSizes = []int{1, 2, 7, 32 << 10}

func TestChunkedReaderDecodes(t *testing.T) {
	small := testPayload(100)
	large := testPayload(70000)
	crc := []trailerLine{{name: "x-amz-checksum-crc32"}}
	tests := []struct {
		name    string
		payload []byte
		frame   frame
		// noLength leaves DecodedLength at -1, as when x-amz-decoded-content-length is absent.
		noLength bool
	}{
		{name: "signed", payload: large, frame: frame{mode: StreamingSigned, chunk: 64 << 10}},
		{name: "signed empty", payload: nil, frame: frame{mode: StreamingSigned}},
		{name: "signed one byte", payload: small[:1], frame: frame{mode: StreamingSigned}},
		{name: "signed no final CRLF", payload: small, frame: frame{mode: StreamingSigned, noEnd: true}},
		{name: "signed trailer", payload: large, frame: frame{mode: StreamingSignedTrailer, chunk: 64 << 10, trailers: crc}},
		{name: "signed trailer minio layout", payload: large, frame: frame{mode: StreamingSignedTrailer, chunk: 64 << 10, trailers: crc, eol: "\n", minio: true}},
		{name: "signed trailer no trailers", payload: small, frame: frame{mode: StreamingSignedTrailer}},
		{name: "signed trailer empty", payload: nil, frame: frame{mode: StreamingSignedTrailer, trailers: crc}},
		{name: "unsigned", payload: large, frame: frame{mode: StreamingUnsignedTrailer, trailers: crc}},
		{name: "unsigned no trailer", payload: small, frame: frame{mode: StreamingUnsignedTrailer}},
		{name: "unsigned empty", payload: nil, frame: frame{mode: StreamingUnsignedTrailer, trailers: crc}},
		{name: "unsigned minio layout", payload: large, frame: frame{mode: StreamingUnsignedTrailer, chunk: 64 << 10, trailers: crc, eol: "\n", minio: true}},
		{name: "unsigned 1-byte chunks", payload: small, frame: frame{mode: StreamingUnsignedTrailer, chunk: 1, trailers: crc}},
		{name: "signed 1-byte chunks", payload: small, frame: frame{mode: StreamingSignedTrailer, chunk: 1, trailers: crc}},
		{name: "upper-case hex", payload: large, frame: frame{mode: StreamingUnsignedTrailer, chunk: 0xABCD, sizeFmt: "%X", trailers: crc}},
		{name: "leading zeros", payload: large, frame: frame{mode: StreamingSigned, chunk: 0x1000, sizeFmt: "%08x"}},
		{name: "LF trailer lines", payload: small, frame: frame{mode: StreamingUnsignedTrailer, trailers: crc, eol: "\n"}},
		{name: "no final CRLF", payload: small, frame: frame{mode: StreamingUnsignedTrailer, trailers: crc, noEnd: true}},
		{name: "LF and no final CRLF", payload: small, frame: frame{mode: StreamingSignedTrailer, trailers: crc, eol: "\n", noEnd: true}},
		{name: "space after colon", payload: small, frame: frame{mode: StreamingUnsignedTrailer, trailers: crc, colon: ": "}},
		{name: "tab after colon", payload: small, frame: frame{mode: StreamingSignedTrailer, trailers: crc, colon: ":\t"}},
		{name: "mixed-case trailer name", payload: small, frame: frame{mode: StreamingUnsignedTrailer, trailers: []trailerLine{{name: "X-Amz-Checksum-CRC32"}}}},
		{name: "two trailers", payload: small, frame: frame{mode: StreamingSignedTrailer, trailers: []trailerLine{{name: "x-amz-checksum-sha256"}, {name: "x-amz-checksum-crc32c"}}}},
		{name: "no decoded length", payload: large, frame: frame{mode: StreamingUnsignedTrailer, chunk: 8 << 10, trailers: crc}, noLength: true},
	}
	for _, name := range checksumNames {
		for _, mode := range []string{StreamingSignedTrailer, StreamingUnsignedTrailer} {
			tests = append(tests, struct {
				name     string
				payload  []byte
				frame    frame
				noLength bool
			}{name: mode + " " + name, payload: large, frame: frame{mode: mode, chunk: 64 << 10, trailers: []trailerLine{{name: name}}}})
		}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := encodeChunked(tt.payload, tt.frame)
			opts := ChunkedOptions{Mode: tt.frame.mode, DecodedLength: int64(len(tt.payload)), Trailers: trailerNames(tt.frame)}
			if tt.noLength {
				opts.DecodedLength = -1
			}
			wantSums := map[string]string{}
			for _, name := range opts.Trailers {
				wantSums[name] = refChecksum(name, tt.payload)
			}
			for _, w := range sourceWrappers {
				for _, size := range readSizes {
					if size < 32<<10 && len(tt.payload) > 1000 && w.name == "whole" {
						continue // the small reads are covered by the wrapped sources
					}
					t.Run(fmt.Sprintf("%s/read %d", w.name, size), func(t *testing.T) {
						r := NewChunkedReader(w.wrap(bytes.NewReader(body)), opts)
						got, err := readChunked(t, r, size, opts.DecodedLength)
						if err != nil {
							t.Fatalf("Read: %v", err)
						}
						if !bytes.Equal(got, tt.payload) {
							t.Fatalf("payload differs: got %d bytes, want %d", len(got), len(tt.payload))
						}
						if sums := r.Checksums(); !mapsEqual(sums, wantSums) {
							t.Errorf("Checksums() = %v, want %v", sums, wantSums)
						}
						if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
							t.Errorf("Read after EOF = %d, %v; want 0, EOF", n, err)
						}
					})
				}
			}
			t.Run("iotest.TestReader", func(t *testing.T) {
				if err := iotest.TestReader(NewChunkedReader(bytes.NewReader(body), opts), tt.payload); err != nil {
					t.Error(err)
				}
			})
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestChunkedReaderErrors(t *testing.T) {
	payload := testPayload(3000)
	crc := []trailerLine{{name: "x-amz-checksum-crc32"}}
	unsigned := frame{mode: StreamingUnsignedTrailer, chunk: 1000, trailers: crc}
	signed := frame{mode: StreamingSigned, chunk: 1000}
	signedTrailer := frame{mode: StreamingSignedTrailer, chunk: 1000, trailers: crc}
	good := func(f frame) string { return string(encodeChunked(payload, f)) }
	opts := func(f frame) ChunkedOptions {
		return ChunkedOptions{Mode: f.mode, DecodedLength: int64(len(payload)), Trailers: trailerNames(f)}
	}
	withTrailers := func(f frame, lines ...trailerLine) frame {
		f.trailers = lines
		return f
	}
	unsignedBody := good(unsigned)
	signedBody := good(signed)
	finalUnsigned := strings.Index(unsignedBody, "\r\n0\r\n") + 2
	const firstLine = "3e8;chunk-signature=" + fakeSignature + "\r\n"

	type errCase struct {
		name       string
		body       string
		opts       ChunkedOptions
		wantStatus int
		wantCode   string
	}
	tests := []errCase{
		{name: "unsupported mode", body: unsignedBody, opts: ChunkedOptions{Mode: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", DecodedLength: 3000}, wantStatus: 501, wantCode: "NotImplemented"},
		{name: "unknown trailer", body: unsignedBody, opts: ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: 3000, Trailers: []string{"x-amz-checksum-md4"}}, wantStatus: 400, wantCode: "InvalidArgument"},
		{name: "trailer in signed mode", body: signedBody, opts: ChunkedOptions{Mode: StreamingSigned, DecodedLength: 3000, Trailers: []string{"x-amz-checksum-crc32"}}, wantStatus: 400, wantCode: "InvalidArgument"},

		{name: "empty body", body: "", opts: opts(unsigned), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "truncated in size line", body: unsignedBody[:2], opts: opts(unsigned), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "truncated in data", body: unsignedBody[:500], opts: opts(unsigned), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "truncated after data", body: unsignedBody[:5+1000], opts: opts(unsigned), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "truncated in data CRLF", body: unsignedBody[:5+1000+1], opts: opts(unsigned), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "truncated before final chunk", body: unsignedBody[:finalUnsigned], opts: opts(unsigned), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "truncated after final chunk", body: unsignedBody[:finalUnsigned+3], opts: opts(unsigned), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "truncated in trailer", body: unsignedBody[:finalUnsigned+10], opts: opts(unsigned), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "truncated in trailer value", body: strings.TrimSuffix(unsignedBody, "\r\n\r\n"), opts: opts(unsigned), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "truncated signed", body: signedBody[:len(signedBody)-50], opts: opts(signed), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "missing trailer signature", body: good(withTrailers(signedTrailer)), opts: opts(signedTrailer), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "missing trailer signature after trailers", body: strings.Replace(good(signedTrailer), "x-amz-trailer-signature:"+fakeSignature+"\r\n", "", 1), opts: opts(signedTrailer), wantStatus: 400, wantCode: "IncompleteBody"},

		{name: "decoded length too small", body: unsignedBody, opts: ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: 2999, Trailers: []string{"x-amz-checksum-crc32"}}, wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "decoded length too large", body: unsignedBody, opts: ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: 3001, Trailers: []string{"x-amz-checksum-crc32"}}, wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "decoded length zero", body: signedBody, opts: ChunkedOptions{Mode: StreamingSigned, DecodedLength: 0}, wantStatus: 400, wantCode: "IncompleteBody"},

		{name: "size not hex", body: "3g8\r\n", opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "size empty", body: "\r\n", opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "size negative", body: "-3e8\r\n", opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "size with space", body: "3e8 \r\n", opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "size too many digits", body: "1000000000000000\r\n", opts: ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: -1}, wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "size line LF only", body: "3e8\n", opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "size line too long", body: strings.Repeat("0", 5000) + "3e8\r\n", opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "chunk longer than size", body: strings.Replace(unsignedBody, "3e8\r\n", "3e7\r\n", 1), opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "no CRLF after data", body: strings.Replace(unsignedBody, "\r\n3e8\r\n", "xx3e8\r\n", 1), opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "extension in unsigned body", body: strings.Replace(unsignedBody, "3e8\r\n", "3e8;chunk-signature="+fakeSignature+"\r\n", 1), opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "signed chunk without signature", body: strings.Replace(signedBody, firstLine, "3e8\r\n", 1), opts: opts(signed), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "signature too short", body: strings.Replace(signedBody, firstLine, "3e8;chunk-signature="+fakeSignature[:63]+"\r\n", 1), opts: opts(signed), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "signature too long", body: strings.Replace(signedBody, firstLine, "3e8;chunk-signature="+fakeSignature+"0\r\n", 1), opts: opts(signed), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "signature not hex", body: strings.Replace(signedBody, firstLine, "3e8;chunk-signature="+strings.Repeat("z", 64)+"\r\n", 1), opts: opts(signed), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "other chunk extension", body: strings.Replace(signedBody, firstLine, "3e8;foo=bar\r\n", 1), opts: opts(signed), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "extension after signature", body: strings.Replace(signedBody, firstLine, "3e8;chunk-signature="+fakeSignature+";foo=bar\r\n", 1), opts: opts(signed), wantStatus: 400, wantCode: "InvalidChunkSizeError"},
		{name: "space before signature", body: strings.Replace(signedBody, firstLine, "3e8; chunk-signature="+fakeSignature+"\r\n", 1), opts: opts(signed), wantStatus: 400, wantCode: "InvalidChunkSizeError"},

		{name: "trailer without colon", body: unsignedBody[:finalUnsigned+3] + "x-amz-checksum-crc32\r\n\r\n", opts: opts(unsigned), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "undeclared trailer", body: good(withTrailers(unsigned, trailerLine{name: "x-amz-checksum-crc32"}, trailerLine{name: "x-amz-meta-foo", value: "bar"})), opts: opts(unsigned), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "trailer in signed body", body: strings.TrimSuffix(signedBody, "\r\n") + "x-amz-checksum-crc32:" + refChecksum("x-amz-checksum-crc32", payload) + "\r\n\r\n", opts: opts(signed), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "trailer sent twice", body: good(withTrailers(unsigned, crc[0], crc[0])), opts: opts(unsigned), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "trailer empty", body: good(withTrailers(unsigned, trailerLine{name: "x-amz-checksum-crc32", value: " "})), opts: opts(unsigned), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "trailer signature in unsigned body", body: strings.TrimSuffix(unsignedBody, "\r\n") + "x-amz-trailer-signature:" + fakeSignature + "\r\n\r\n", opts: opts(unsigned), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "trailer after trailer signature", body: strings.TrimSuffix(good(signedTrailer), "\r\n") + "x-amz-checksum-crc32:AAAAAA==\r\n\r\n", opts: opts(signedTrailer), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "trailer signature not hex", body: strings.Replace(good(signedTrailer), "signature:"+fakeSignature, "signature:"+fakeSignature[:60], 1), opts: opts(signedTrailer), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "trailer line too long", body: unsignedBody[:finalUnsigned+3] + "x-amz-checksum-crc32:" + strings.Repeat("A", 5000) + "\r\n\r\n", opts: opts(unsigned), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "trailers too long", body: unsignedBody + strings.Repeat("\r\n", 9000), opts: opts(unsigned), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "garbage after body", body: unsignedBody + "5\r\nhello\r\n0\r\n\r\n", opts: opts(unsigned), wantStatus: 400, wantCode: "MalformedTrailerError"},
		{name: "declared trailer missing", body: good(withTrailers(unsigned)), opts: opts(unsigned), wantStatus: 400, wantCode: "IncompleteBody"},
		{name: "checksum not base64", body: good(withTrailers(unsigned, trailerLine{name: "x-amz-checksum-crc32", value: "!!!!"})), opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidRequest"},
		{name: "checksum wrong length", body: good(withTrailers(unsigned, trailerLine{name: "x-amz-checksum-crc32", value: "AAAAAAAA"})), opts: opts(unsigned), wantStatus: 400, wantCode: "InvalidRequest"},
	}
	for _, name := range checksumNames {
		for _, f := range []frame{unsigned, signedTrailer} {
			wrong := refChecksum(name, payload[1:])
			tests = append(tests, errCase{
				name:       "wrong " + name + " " + f.mode,
				body:       good(withTrailers(f, trailerLine{name: name, value: wrong})),
				opts:       opts(withTrailers(f, trailerLine{name: name})),
				wantStatus: 400, wantCode: "BadDigest",
			})
		}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range sourceWrappers[:2] {
				for _, size := range []int{1, 32 << 10} {
					r := NewChunkedReader(w.wrap(strings.NewReader(tt.body)), tt.opts)
					got, err := readChunked(t, r, size, tt.opts.DecodedLength)
					var be *Error
					if !errors.As(err, &be) {
						t.Fatalf("%s/read %d: err = %v, want a *Error", w.name, size, err)
					}
					if be.Status != tt.wantStatus || be.Code != tt.wantCode {
						t.Fatalf("%s/read %d: err = %v (status %d), want %d %s", w.name, size, err, be.Status, tt.wantStatus, tt.wantCode)
					}
					// Hold-back: however the body fails, the payload is never complete.
					if len(got) >= len(payload) {
						t.Fatalf("%s/read %d: returned %d bytes before failing, want fewer than %d", w.name, size, len(got), len(payload))
					}
					if n, err2 := r.Read(make([]byte, 10)); n != 0 || err2 != err {
						t.Fatalf("Read after error = %d, %v; want 0, %v", n, err2, err)
					}
					if r.Checksums() != nil {
						t.Fatal("Checksums() is not nil after an error")
					}
				}
			}
		})
	}
}

var errClientGone = errors.New("client gone")

func TestChunkedReaderSourceErrors(t *testing.T) {
	payload := testPayload(3000)
	f := frame{mode: StreamingUnsignedTrailer, chunk: 1000, trailers: []trailerLine{{name: "x-amz-checksum-crc32"}}}
	body := encodeChunked(payload, f)
	opts := ChunkedOptions{Mode: f.mode, DecodedLength: 3000, Trailers: trailerNames(f)}
	tests := []struct {
		name       string
		cut        int
		err        error
		wantBody   bool // a *Error is wanted (IncompleteBody)
		wantIsErrs []error
	}{
		{name: "client gone in size line", cut: 2, err: errClientGone, wantIsErrs: []error{errClientGone}},
		{name: "client gone in data", cut: 700, err: errClientGone, wantIsErrs: []error{errClientGone}},
		{name: "client gone in trailers", cut: len(body) - 5, err: errClientGone, wantIsErrs: []error{errClientGone}},
		{name: "unexpected EOF in data", cut: 700, err: io.ErrUnexpectedEOF, wantBody: true, wantIsErrs: []error{io.ErrUnexpectedEOF}},
		{name: "unexpected EOF in trailers", cut: len(body) - 5, err: io.ErrUnexpectedEOF, wantBody: true, wantIsErrs: []error{io.ErrUnexpectedEOF}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := io.MultiReader(bytes.NewReader(body[:tt.cut]), iotest.ErrReader(tt.err))
			r := NewChunkedReader(src, opts)
			got, err := readChunked(t, r, 512, opts.DecodedLength)
			if len(got) >= len(payload) {
				t.Fatalf("returned the whole payload before failing")
			}
			var be *Error
			if isBody := errors.As(err, &be); isBody != tt.wantBody {
				t.Fatalf("err = %v: *Error %v, want %v", err, isBody, tt.wantBody)
			}
			if be != nil && be.Code != "IncompleteBody" {
				t.Errorf("code %s, want IncompleteBody", be.Code)
			}
			for _, target := range tt.wantIsErrs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			if !tt.wantBody && !strings.HasPrefix(err.Error(), "reading chunked body: ") {
				t.Errorf("err = %q, want it to start with %q", err, "reading chunked body: ")
			}
		})
	}
}

// recordingReader is a body source that counts how much of the body has been consumed.
type recordingReader struct {
	r        io.Reader
	consumed int
}

func (rr *recordingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	rr.consumed += n
	return n, err
}

func TestChunkedReaderHoldsBackLastByte(t *testing.T) {
	payload := testPayload(5000)
	for _, mode := range []string{StreamingSignedTrailer, StreamingUnsignedTrailer} {
		for _, tt := range []struct {
			name  string
			value string
		}{
			{name: "right checksum", value: refChecksum("x-amz-checksum-crc32", payload)},
			{name: "wrong checksum", value: refChecksum("x-amz-checksum-crc32", payload[1:])},
		} {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				f := frame{mode: mode, chunk: 1024, trailers: []trailerLine{{name: "x-amz-checksum-crc32", value: tt.value}}}
				body := encodeChunked(payload, f)
				opts := ChunkedOptions{Mode: mode, DecodedLength: int64(len(payload)), Trailers: trailerNames(f)}
				for _, size := range readSizes {
					src := &recordingReader{r: iotest.HalfReader(bytes.NewReader(body))}
					r := NewChunkedReader(src, opts)
					// Read as the transport does: never more than Content-Length.
					lr := io.LimitReader(r, opts.DecodedLength)
					buf := make([]byte, size)
					total := 0
					var err error
					for err == nil {
						var n int
						n, err = lr.Read(buf)
						total += n
						if total == len(payload) && src.consumed != len(body) {
							t.Fatalf("read %d: last byte released with %d of %d body bytes consumed", size, src.consumed, len(body))
						}
						if total == len(payload) && err != io.EOF {
							t.Fatalf("read %d: last byte released with err %v, want io.EOF", size, err)
						}
					}
					if tt.name == "right checksum" {
						if err != io.EOF || total != len(payload) {
							t.Fatalf("read %d: %d bytes, %v; want %d, EOF", size, total, err, len(payload))
						}
						continue
					}
					var be *Error
					if !errors.As(err, &be) || be.Code != "BadDigest" {
						t.Fatalf("read %d: err %v, want BadDigest", size, err)
					}
					if total != len(payload)-1 {
						t.Fatalf("read %d: released %d bytes, want all but the last (%d)", size, total, len(payload)-1)
					}
				}
			})
		}
	}
}

// TestChunkedReaderHoldBackOverHTTP forwards a decoded body with Content-Length set to the
// decoded length, as the proxy does: a wrong trailer checksum must leave the upstream with a
// truncated body, never a complete one.
func TestChunkedReaderHoldBackOverHTTP(t *testing.T) {
	type upload struct {
		body []byte
		err  error
	}
	uploads := make(chan upload, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		uploads <- upload{b, err}
	}))
	t.Cleanup(srv.Close)

	payload := testPayload(100 << 10)
	for _, tt := range []struct {
		name  string
		value string
		ok    bool
	}{
		{name: "right checksum", value: refChecksum("x-amz-checksum-sha256", payload), ok: true},
		{name: "wrong checksum", value: refChecksum("x-amz-checksum-sha256", payload[:len(payload)-1])},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := frame{mode: StreamingUnsignedTrailer, chunk: 64 << 10, trailers: []trailerLine{{name: "x-amz-checksum-sha256", value: tt.value}}}
			opts := ChunkedOptions{Mode: f.mode, DecodedLength: int64(len(payload)), Trailers: trailerNames(f)}
			r := NewChunkedReader(bytes.NewReader(encodeChunked(payload, f)), opts)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL, r)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = opts.DecodedLength
			resp, err := srv.Client().Do(req)
			if resp != nil {
				resp.Body.Close()
			}
			up := <-uploads
			if tt.ok {
				if err != nil || up.err != nil || !bytes.Equal(up.body, payload) {
					t.Fatalf("client err %v, upstream got %d bytes, err %v", err, len(up.body), up.err)
				}
				return
			}
			var be *Error
			if !errors.As(err, &be) || be.Code != "BadDigest" {
				t.Errorf("client err = %v, want a BadDigest *Error", err)
			}
			if up.err == nil || len(up.body) >= len(payload) {
				t.Fatalf("upstream got %d of %d bytes, err %v: want a truncated body", len(up.body), len(payload), up.err)
			}
		})
	}
}

func TestChunkedReaderVerifyChunk(t *testing.T) {
	payload := testPayload(10000)
	crc := []trailerLine{{name: "x-amz-checksum-crc32c"}}
	type call struct {
		sig string
		sum string
	}
	for _, mode := range []string{StreamingSigned, StreamingSignedTrailer} {
		t.Run(mode, func(t *testing.T) {
			f := frame{mode: mode, chunk: 4096, chain: testChain()}
			if mode == StreamingSignedTrailer {
				f.trailers = crc
			}
			body := encodeChunked(payload, f)
			// Chunk signatures as sent, in order, and the SHA-256 of each chunk's data.
			var want []call
			for off := 0; ; off += 4096 {
				data := payload[min(off, len(payload)):min(off+4096, len(payload))]
				sum := sha256.Sum256(data)
				want = append(want, call{sum: hex.EncodeToString(sum[:])})
				if len(data) == 0 {
					break
				}
			}
			for i, line := range strings.Split(string(body), "chunk-signature=")[1:] {
				want[i].sig = line[:64]
			}

			t.Run("calls", func(t *testing.T) {
				var got []call
				opts := ChunkedOptions{Mode: mode, DecodedLength: int64(len(payload)), Trailers: trailerNames(f),
					VerifyChunk: func(sig string, sum []byte) error {
						got = append(got, call{sig, hex.EncodeToString(sum)})
						return nil
					},
				}
				out, err := readChunked(t, NewChunkedReader(iotest.OneByteReader(bytes.NewReader(body)), opts), 100, opts.DecodedLength)
				if err != nil || !bytes.Equal(out, payload) {
					t.Fatalf("read %d bytes, err %v", len(out), err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("VerifyChunk calls:\n got %v\nwant %v", got, want)
				}
			})

			t.Run("chain", func(t *testing.T) {
				chain := testChain()
				opts := ChunkedOptions{Mode: mode, DecodedLength: int64(len(payload)), Trailers: trailerNames(f),
					VerifyChunk: chain.verifyChunk, VerifyTrailer: chain.verifyTrailer}
				out, err := readChunked(t, NewChunkedReader(bytes.NewReader(body), opts), 32<<10, opts.DecodedLength)
				if err != nil || !bytes.Equal(out, payload) {
					t.Fatalf("read %d bytes, err %v", len(out), err)
				}
				if wantCalls := len(want) + len(f.trailers); chain.calls != wantCalls {
					t.Errorf("%d verify calls, want %d", chain.calls, wantCalls)
				}
			})

			errBadSig := errors.New("bad signature")
			for _, failAt := range []int{1, 2, len(want)} {
				t.Run(fmt.Sprintf("fail at chunk %d", failAt), func(t *testing.T) {
					calls := 0
					opts := ChunkedOptions{Mode: mode, DecodedLength: int64(len(payload)), Trailers: trailerNames(f),
						VerifyChunk: func(string, []byte) error {
							if calls++; calls == failAt {
								return errBadSig
							}
							return nil
						},
					}
					out, err := readChunked(t, NewChunkedReader(bytes.NewReader(body), opts), 32<<10, opts.DecodedLength)
					var be *Error
					if !errors.As(err, &be) || be.Status != http.StatusForbidden || be.Code != "SignatureDoesNotMatch" || !errors.Is(err, errBadSig) {
						t.Fatalf("err = %v, want 403 SignatureDoesNotMatch wrapping errBadSig", err)
					}
					if len(out) >= failAt*4096 || len(out) >= len(payload) {
						t.Fatalf("released %d bytes, past the failing chunk %d", len(out), failAt)
					}
				})
			}

			if mode == StreamingSignedTrailer {
				t.Run("trailer bytes", func(t *testing.T) {
					var gotSig string
					var gotTrailer []byte
					opts := ChunkedOptions{Mode: mode, DecodedLength: int64(len(payload)), Trailers: trailerNames(f),
						VerifyTrailer: func(sig string, trailer []byte) error {
							gotSig, gotTrailer = sig, slices.Clone(trailer)
							return nil
						},
					}
					if _, err := readChunked(t, NewChunkedReader(bytes.NewReader(body), opts), 32<<10, opts.DecodedLength); err != nil {
						t.Fatal(err)
					}
					wantTrailer := "x-amz-checksum-crc32c:" + refChecksum("x-amz-checksum-crc32c", payload) + "\n"
					if string(gotTrailer) != wantTrailer {
						t.Errorf("trailer = %q, want %q", gotTrailer, wantTrailer)
					}
					if !strings.Contains(string(body), "x-amz-trailer-signature:"+gotSig+"\r\n") {
						t.Errorf("signature %q is not the one sent", gotSig)
					}
				})
				t.Run("trailer signature wrong", func(t *testing.T) {
					bad := f
					bad.chain, bad.badSig = testChain(), true
					chain := testChain()
					opts := ChunkedOptions{Mode: mode, DecodedLength: int64(len(payload)), Trailers: trailerNames(f),
						VerifyChunk: chain.verifyChunk, VerifyTrailer: chain.verifyTrailer}
					out, err := readChunked(t, NewChunkedReader(bytes.NewReader(encodeChunked(payload, bad)), opts), 32<<10, opts.DecodedLength)
					var be *Error
					if !errors.As(err, &be) || be.Status != http.StatusForbidden || be.Code != "SignatureDoesNotMatch" {
						t.Fatalf("err = %v, want 403 SignatureDoesNotMatch", err)
					}
					if len(out) >= len(payload) {
						t.Fatal("whole payload released before the trailer signature was checked")
					}
				})
			}
		})
	}
}

// patternReader produces n bytes of a fixed pattern without holding them.
type patternReader struct {
	n, off int
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(len(b), p.n-p.off)]
	for i := range b {
		x := p.off + i
		b[i] = byte(x ^ x>>8 ^ x>>16)
	}
	p.off += len(b)
	return len(b), nil
}

func TestChunkedReaderLargeChunkStreams(t *testing.T) {
	const size = 16 << 20
	crc := crc32.NewIEEE()
	if _, err := io.Copy(crc, &patternReader{n: size}); err != nil {
		t.Fatal(err)
	}
	value := base64.StdEncoding.EncodeToString(crc.Sum(nil))
	header := fmt.Sprintf("%x\r\n", size)
	src := &recordingReader{r: io.MultiReader(
		strings.NewReader(header),
		&patternReader{n: size},
		strings.NewReader("\r\n0\r\nx-amz-checksum-crc32:"+value+"\r\n\r\n"),
	)}
	opts := ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: size, Trailers: []string{"x-amz-checksum-crc32"}}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	r := NewChunkedReader(src, opts)
	buf := make([]byte, 32<<10)
	out := crc32.NewIEEE()
	total := 0
	for {
		n, err := r.Read(buf)
		if total == 0 && n > 0 && src.consumed > len(header)+len(buf)+maxChunkLine {
			// Data is passed on as it arrives, not after the whole chunk.
			t.Fatalf("first %d bytes returned after %d body bytes were read", n, src.consumed)
		}
		out.Write(buf[:n])
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	runtime.ReadMemStats(&after)
	if total != size || !bytes.Equal(out.Sum(nil), crc.Sum(nil)) {
		t.Fatalf("decoded %d bytes, checksum mismatch or short", total)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("decoding a 16 MiB chunk allocated %d bytes; want well under 1 MiB", alloc)
	}
}

func TestChunkedReaderAllocs(t *testing.T) {
	payload := testPayload(1 << 20)
	for _, name := range checksumNames {
		t.Run(name, func(t *testing.T) {
			f := frame{mode: StreamingUnsignedTrailer, chunk: 64 << 10, trailers: []trailerLine{{name: name}}}
			body := encodeChunked(payload, f)
			opts := ChunkedOptions{Mode: f.mode, DecodedLength: int64(len(payload)), Trailers: trailerNames(f)}
			buf := make([]byte, 32<<10)
			src := bytes.NewReader(body)
			allocs := testing.AllocsPerRun(5, func() {
				src.Reset(body)
				r := NewChunkedReader(src, opts)
				for {
					if _, err := r.Read(buf); err != nil {
						if err != io.EOF {
							t.Fatal(err)
						}
						return
					}
				}
			})
			// The reader, its buffer, the hash and the trailer bookkeeping; nothing per read.
			if allocs > 20 {
				t.Errorf("%v allocations to decode 1 MiB, want a constant handful", allocs)
			}
		})
	}
}

func TestChunkedCRC64NVME(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  uint64
	}{
		{name: "empty", input: "", want: 0},
		{name: "check value", input: "123456789", want: 0xae8b14860a799888},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTrailerHash("x-amz-checksum-crc64nvme")
			d.Write([]byte(tt.input))
			if got := binary.BigEndian.Uint64(d.Sum(nil)); got != tt.want {
				t.Errorf("crc64nvme(%q) = %#x, want %#x", tt.input, got, tt.want)
			}
		})
	}
	t.Run("aws-sdk-go-v2 vector", func(t *testing.T) {
		d := newTrailerHash("x-amz-checksum-crc64nvme")
		d.Write([]byte("hello world"))
		// From aws-sdk-go-v2 service/internal/checksum algorithms_test.go.
		if got := base64.StdEncoding.EncodeToString(d.Sum(nil)); got != "jSnVw/bqjr4=" {
			t.Errorf("crc64nvme(hello world) = %s, want jSnVw/bqjr4=", got)
		}
	})
	t.Run("against hash/crc64 and minio/crc64nvme", func(t *testing.T) {
		data := testPayload(10000)
		tab := crc64.MakeTable(0x9a6c9329ac4bc9b5)
		for _, n := range []int{1, 7, 8, 9, 63, 64, 2047, 2048, 4097, 10000} {
			d := newTrailerHash("x-amz-checksum-crc64nvme")
			// Feed it in uneven writes to cross the 8-byte steps.
			for rest := data[:n]; len(rest) > 0; {
				k := min(len(rest), 1+len(rest)%13)
				d.Write(rest[:k])
				rest = rest[k:]
			}
			got := binary.BigEndian.Uint64(d.Sum(nil))
			if want := crc64.Checksum(data[:n], tab); got != want {
				t.Errorf("n=%d: %#x, hash/crc64 says %#x", n, got, want)
			}
			if want := crc64nvme.Checksum(data[:n]); got != want {
				t.Errorf("n=%d: %#x, minio/crc64nvme says %#x", n, got, want)
			}
		}
	})
}

func TestChunkedChecksumVectors(t *testing.T) {
	// From aws-sdk-go-v2 service/internal/checksum algorithms_test.go, for "hello world".
	want := map[string]string{
		"x-amz-checksum-crc32":     "DUoRhQ==",
		"x-amz-checksum-crc32c":    "yZRlqg==",
		"x-amz-checksum-crc64nvme": "jSnVw/bqjr4=",
		"x-amz-checksum-sha1":      "Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
		"x-amz-checksum-sha256":    "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
		"x-amz-checksum-sha512":    "MJ7MSJwS1utMxA9QyQLytNDtd+5RGnx6m808qG1M2G+YndNbxf9JlnDaNCVbRbDP2DDoH2Bdz33FVC6TrpzXbw==",
	}
	for _, name := range checksumNames {
		t.Run(name, func(t *testing.T) {
			payload := []byte("hello world")
			body := encodeChunked(payload, frame{mode: StreamingUnsignedTrailer, trailers: []trailerLine{{name: name, value: want[name]}}})
			r := NewChunkedReader(bytes.NewReader(body), ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: 11, Trailers: []string{name}})
			got, err := readChunked(t, r, 64, 11)
			if err != nil || string(got) != "hello world" {
				t.Fatalf("got %q, %v", got, err)
			}
			if r.Checksums()[name] != want[name] {
				t.Errorf("Checksums() = %v", r.Checksums())
			}
		})
	}
}

func TestChunkedOptionsFromHeader(t *testing.T) {
	tests := []struct {
		name       string
		header     map[string][]string
		want       ChunkedOptions
		wantOK     bool
		wantStatus int
		wantCode   string
	}{
		{name: "plain body", header: map[string][]string{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}},
		{name: "no headers", header: map[string][]string{}},
		{name: "gzip", header: map[string][]string{"Content-Encoding": {"gzip"}, "X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}},
		{
			name:   "signed",
			header: map[string][]string{"X-Amz-Content-Sha256": {StreamingSigned}, "Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {"66560"}},
			want:   ChunkedOptions{Mode: StreamingSigned, DecodedLength: 66560}, wantOK: true,
		},
		{
			name:   "signed without content-encoding",
			header: map[string][]string{"X-Amz-Content-Sha256": {StreamingSigned}, "X-Amz-Decoded-Content-Length": {"0"}},
			want:   ChunkedOptions{Mode: StreamingSigned, DecodedLength: 0}, wantOK: true,
		},
		{
			name:   "signed trailer",
			header: map[string][]string{"X-Amz-Content-Sha256": {StreamingSignedTrailer}, "Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {"5"}, "X-Amz-Trailer": {"x-amz-checksum-crc32c"}},
			want:   ChunkedOptions{Mode: StreamingSignedTrailer, DecodedLength: 5, Trailers: []string{"x-amz-checksum-crc32c"}}, wantOK: true,
		},
		{
			name:   "unsigned trailer, names normalised",
			header: map[string][]string{"X-Amz-Content-Sha256": {StreamingUnsignedTrailer}, "Content-Encoding": {"gzip, aws-chunked"}, "X-Amz-Trailer": {"X-Amz-Checksum-SHA256, x-amz-checksum-crc32", "x-amz-checksum-sha256"}},
			want:   ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: -1, Trailers: []string{"x-amz-checksum-sha256", "x-amz-checksum-crc32"}}, wantOK: true,
		},
		{
			name:   "repeated equal decoded length",
			header: map[string][]string{"X-Amz-Content-Sha256": {StreamingUnsignedTrailer}, "X-Amz-Decoded-Content-Length": {"7", "7"}},
			want:   ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: 7}, wantOK: true,
		},
		{name: "ecdsa", header: map[string][]string{"X-Amz-Content-Sha256": {"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"}}, wantOK: true, wantStatus: 501, wantCode: "NotImplemented"},
		{name: "ecdsa trailer", header: map[string][]string{"X-Amz-Content-Sha256": {"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"}}, wantOK: true, wantStatus: 501, wantCode: "NotImplemented"},
		// ceph/s3-tests test_object_content_encoding_aws_chunked: a plain body merely
		// labelled aws-chunked is not framed.
		{name: "aws-chunked label on a plain body", header: map[string][]string{"Content-Encoding": {"gzip, aws-chunked"}, "X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}},
		{name: "aws-chunked label alone", header: map[string][]string{"Content-Encoding": {"aws-chunked"}}},
		{name: "framed body labelled unsigned payload", header: map[string][]string{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {"5"}, "X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}, wantOK: true, wantStatus: 400, wantCode: "InvalidArgument"},
		{name: "framed body without payload hash", header: map[string][]string{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {"5"}}, wantOK: true, wantStatus: 400, wantCode: "InvalidArgument"},
		{name: "decoded length not a number", header: map[string][]string{"X-Amz-Content-Sha256": {StreamingSigned}, "X-Amz-Decoded-Content-Length": {"abc"}}, wantOK: true, wantStatus: 400, wantCode: "InvalidArgument"},
		{name: "decoded length negative", header: map[string][]string{"X-Amz-Content-Sha256": {StreamingSigned}, "X-Amz-Decoded-Content-Length": {"-1"}}, wantOK: true, wantStatus: 400, wantCode: "InvalidArgument"},
		{name: "decoded length with plus", header: map[string][]string{"X-Amz-Content-Sha256": {StreamingSigned}, "X-Amz-Decoded-Content-Length": {"+5"}}, wantOK: true, wantStatus: 400, wantCode: "InvalidArgument"},
		{name: "decoded length overflows", header: map[string][]string{"X-Amz-Content-Sha256": {StreamingSigned}, "X-Amz-Decoded-Content-Length": {"99999999999999999999"}}, wantOK: true, wantStatus: 400, wantCode: "InvalidArgument"},
		{name: "decoded length conflicting", header: map[string][]string{"X-Amz-Content-Sha256": {StreamingSigned}, "X-Amz-Decoded-Content-Length": {"5", "6"}}, wantOK: true, wantStatus: 400, wantCode: "InvalidArgument"},
		{name: "unknown trailer", header: map[string][]string{"X-Amz-Content-Sha256": {StreamingUnsignedTrailer}, "X-Amz-Trailer": {"x-amz-checksum-md5"}}, wantOK: true, wantStatus: 400, wantCode: "InvalidArgument"},
		{name: "trailer in signed mode", header: map[string][]string{"X-Amz-Content-Sha256": {StreamingSigned}, "X-Amz-Trailer": {"x-amz-checksum-crc32"}}, wantOK: true, wantStatus: 400, wantCode: "InvalidArgument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ChunkedOptionsFromHeader(http.Header(tt.header))
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if tt.wantCode != "" {
				var be *Error
				if !errors.As(err, &be) || be.Status != tt.wantStatus || be.Code != tt.wantCode {
					t.Fatalf("err = %v, want %d %s", err, tt.wantStatus, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != tt.want.Mode || got.DecodedLength != tt.want.DecodedLength || !slices.Equal(got.Trailers, tt.want.Trailers) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStripChunkedHeaders(t *testing.T) {
	tests := []struct {
		name   string
		header map[string][]string
		want   map[string][]string
	}{
		{
			name: "aws-chunked only",
			header: map[string][]string{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {"5"}, "X-Amz-Trailer": {"x-amz-checksum-crc32"},
				"X-Amz-Sdk-Checksum-Algorithm": {"CRC32"}, "Transfer-Encoding": {"chunked"}, "Content-Type": {"text/plain"}},
			want: map[string][]string{"Content-Type": {"text/plain"}},
		},
		{
			name:   "keeps other encodings",
			header: map[string][]string{"Content-Encoding": {"aws-chunked,gzip"}},
			want:   map[string][]string{"Content-Encoding": {"gzip"}},
		},
		{
			name:   "several values",
			header: map[string][]string{"Content-Encoding": {"gzip", "AWS-Chunked, br"}},
			want:   map[string][]string{"Content-Encoding": {"gzip, br"}},
		},
		{
			name:   "no content-encoding",
			header: map[string][]string{"X-Amz-Decoded-Content-Length": {"5"}},
			want:   map[string][]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header(tt.header)
			StripChunkedHeaders(h)
			if len(h) != len(tt.want) {
				t.Fatalf("got %v, want %v", h, tt.want)
			}
			for k, v := range tt.want {
				if !slices.Equal(h[k], v) {
					t.Errorf("%s = %q, want %q", k, h[k], v)
				}
			}
		})
	}
}

// sha256Hasher is what minio-go's streaming signer wants for hashing chunks.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// TestChunkedReaderMinioGo decodes bodies framed and signed by minio-go's own signer, and
// verifies their chunk and trailer signatures.
func TestChunkedReaderMinioGo(t *testing.T) {
	const region, accessKey, secret = "us-east-1", "AKIAEXAMPLE", "minio-secret"
	for _, size := range []int{1, 64 << 10, 150000} {
		for _, tt := range []struct {
			name    string
			trailer string // "" for none
			signed  bool
		}{
			{name: "signed", signed: true},
			{name: "signed crc32", trailer: "x-amz-checksum-crc32", signed: true},
			{name: "signed crc64nvme", trailer: "x-amz-checksum-crc64nvme", signed: true},
			{name: "unsigned crc32c", trailer: "x-amz-checksum-crc32c"},
			{name: "unsigned sha256", trailer: "x-amz-checksum-sha256"},
		} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, size), func(t *testing.T) {
				payload := testPayload(size)
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, "http://127.0.0.1:9000/bucket/key", bytes.NewReader(payload))
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = int64(size)
				var trailer http.Header
				if tt.trailer != "" {
					trailer = http.Header{tt.trailer: {refChecksum(tt.trailer, payload)}}
				}
				now := time.Now().UTC()
				if tt.signed {
					req.Trailer = trailer
					req = miniosigner.StreamingSignV4(req, accessKey, secret, "", region, int64(size), now, sha256Hasher{sha256.New()})
				} else {
					// What minio-go's Client does over HTTPS (api.go newRequest).
					req.Header.Set("X-Amz-Content-Sha256", StreamingUnsignedTrailer)
					req = miniosigner.SignV4Trailer(*req, accessKey, secret, "", region, trailer)
				}
				body, err := io.ReadAll(req.Body)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(body)) != req.ContentLength {
					t.Fatalf("minio-go framed %d bytes but set Content-Length %d", len(body), req.ContentLength)
				}

				opts, ok, err := ChunkedOptionsFromHeader(req.Header)
				if !ok || err != nil {
					t.Fatalf("ChunkedOptionsFromHeader(%v) = %v, %v", req.Header, ok, err)
				}
				date, err := time.Parse("20060102T150405Z", req.Header.Get("X-Amz-Date"))
				if err != nil {
					t.Fatal(err)
				}
				_, seed, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
				for _, w := range sourceWrappers[:3] {
					if tt.signed {
						chain := newSigChain(secret, region, date, seed)
						opts.VerifyChunk, opts.VerifyTrailer = chain.verifyChunk, chain.verifyTrailer
					}
					r := NewChunkedReader(w.wrap(bytes.NewReader(body)), opts)
					got, err := readChunked(t, r, 32<<10, opts.DecodedLength)
					if err != nil {
						t.Fatalf("%s: %v", w.name, err)
					}
					if !bytes.Equal(got, payload) {
						t.Fatalf("%s: payload differs", w.name)
					}
					if tt.trailer != "" && r.Checksums()[tt.trailer] != refChecksum(tt.trailer, payload) {
						t.Fatalf("%s: Checksums() = %v", w.name, r.Checksums())
					}
				}
			})
		}
	}
}

// TestChunkedReaderAWSSDK decodes what aws-sdk-go-v2's S3 client sends: over HTTPS it frames
// PutObject bodies as STREAMING-UNSIGNED-PAYLOAD-TRAILER with a checksum trailer.
func TestChunkedReaderAWSSDK(t *testing.T) {
	type captured struct {
		header http.Header
		body   []byte
	}
	requests := make(chan captured, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		requests <- captured{r.Header.Clone(), b}
	}))
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint:               aws.String(srv.URL),
		UsePathStyle:               true,
		HTTPClient:                 srv.Client(),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
	})

	tests := []struct {
		name      string
		algorithm types.ChecksumAlgorithm
		trailer   string
	}{
		{name: "default", trailer: "x-amz-checksum-crc32"},
		{name: "crc32", algorithm: types.ChecksumAlgorithmCrc32, trailer: "x-amz-checksum-crc32"},
		{name: "crc32c", algorithm: types.ChecksumAlgorithmCrc32c, trailer: "x-amz-checksum-crc32c"},
		{name: "crc64nvme", algorithm: types.ChecksumAlgorithmCrc64nvme, trailer: "x-amz-checksum-crc64nvme"},
		{name: "sha1", algorithm: types.ChecksumAlgorithmSha1, trailer: "x-amz-checksum-sha1"},
		{name: "sha256", algorithm: types.ChecksumAlgorithmSha256, trailer: "x-amz-checksum-sha256"},
	}
	for _, tt := range tests {
		for _, size := range []int{0, 1, 200000} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, size), func(t *testing.T) {
				payload := testPayload(size)
				_, err := client.PutObject(t.Context(), &s3.PutObjectInput{
					Bucket:            aws.String("bucket"),
					Key:               aws.String("key"),
					Body:              bytes.NewReader(payload),
					ChecksumAlgorithm: tt.algorithm,
				})
				if err != nil {
					t.Fatal(err)
				}
				req := <-requests
				opts, ok, err := ChunkedOptionsFromHeader(req.header)
				if size == 0 {
					// An empty body goes as UNSIGNED-PAYLOAD with the checksum in a header.
					if ok || err != nil || req.header.Get(tt.trailer) != refChecksum(tt.trailer, nil) {
						t.Fatalf("empty body: ChunkedOptionsFromHeader(%v) = %v, %v", req.header, ok, err)
					}
					return
				}
				if !ok || err != nil {
					t.Fatalf("ChunkedOptionsFromHeader(%v) = %v, %v", req.header, ok, err)
				}
				if opts.Mode != StreamingUnsignedTrailer || !slices.Equal(opts.Trailers, []string{tt.trailer}) || opts.DecodedLength != int64(size) {
					t.Fatalf("options %+v", opts)
				}
				for _, w := range sourceWrappers {
					r := NewChunkedReader(w.wrap(bytes.NewReader(req.body)), opts)
					got, err := readChunked(t, r, 32<<10, opts.DecodedLength)
					if err != nil {
						t.Fatalf("%s: %v", w.name, err)
					}
					if !bytes.Equal(got, payload) {
						t.Fatalf("%s: payload differs", w.name)
					}
					if want := refChecksum(tt.trailer, payload); r.Checksums()[tt.trailer] != want {
						t.Fatalf("%s: Checksums() = %v, want %s", w.name, r.Checksums(), want)
					}
				}
				StripChunkedHeaders(req.header)
				for _, k := range []string{"Content-Encoding", "X-Amz-Decoded-Content-Length", "X-Amz-Trailer", "X-Amz-Sdk-Checksum-Algorithm"} {
					if v, ok := req.header[k]; ok {
						t.Errorf("after StripChunkedHeaders %s = %q", k, v)
					}
				}
			})
		}
	}
}

func BenchmarkChunkedDecode(b *testing.B) {
	payload := testPayload(1 << 20)
	f := frame{mode: StreamingUnsignedTrailer, chunk: 64 << 10, trailers: []trailerLine{{name: "x-amz-checksum-crc32"}}}
	body := encodeChunked(payload, f)
	opts := ChunkedOptions{Mode: f.mode, DecodedLength: int64(len(payload)), Trailers: trailerNames(f)}
	buf := make([]byte, 32<<10)
	src := bytes.NewReader(body)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		src.Reset(body)
		r := NewChunkedReader(src, opts)
		for {
			_, err := r.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
