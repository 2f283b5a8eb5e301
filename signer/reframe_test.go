package signer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// s3Checksums are the algorithms S3 has; the decoder also takes SHA512.
var s3Checksums = []string{
	"x-amz-checksum-crc32",
	"x-amz-checksum-crc32c",
	"x-amz-checksum-crc64nvme",
	"x-amz-checksum-sha1",
	"x-amz-checksum-sha256",
}

func TestFramedLength(t *testing.T) {
	tests := []struct {
		name     string
		n, chunk int64
		trailers []string
		want     int64
		wantErr  bool
	}{
		// "0\r\n" + "\r\n"
		{name: "empty, no trailer", n: 0, chunk: 16, want: 5},
		// "5\r\nhello\r\n" + "0\r\n" + "x-amz-checksum-crc32:NhCmhg==\r\n" + "\r\n"
		{name: "hello crc32", n: 5, chunk: 16, trailers: []string{"x-amz-checksum-crc32"}, want: 10 + 3 + 31 + 2},
		// two chunks "10\r\n" + 16 + "\r\n", one "4\r\n" + 4 + "\r\n"
		{name: "two full chunks and a rest", n: 36, chunk: 16, want: 2*(4+16+2) + (3 + 4 + 2) + 5},
		{name: "exact chunks", n: 32, chunk: 16, want: 2*(4+16+2) + 5},
		// sha256 is 44 base64 characters, crc64nvme 12
		{name: "two trailers", n: 1, chunk: 16, trailers: []string{"x-amz-checksum-sha256", "x-amz-checksum-crc64nvme"},
			want: 6 + 3 + (21 + 1 + 44 + 2) + (24 + 1 + 12 + 2) + 2},
		{name: "default chunk, 1 GiB", n: 1 << 30, chunk: FrameChunkSize, trailers: []string{"x-amz-checksum-crc32c"},
			want: (1<<30)/(64<<10)*(5+4+64<<10) + 3 + (21 + 1 + 8 + 2) + 2},
		{name: "negative length", n: -1, chunk: 16, wantErr: true},
		{name: "zero chunk", n: 1, chunk: 0, wantErr: true},
		{name: "unknown trailer", n: 1, chunk: 16, trailers: []string{"x-amz-checksum-md5"}, wantErr: true},
		{name: "too long", n: 1 << 62, chunk: 16, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FramedLength(tt.n, tt.chunk, tt.trailers)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("FramedLength = %d, want %d", got, tt.want)
			}
		})
	}
}

// reframe runs body through a decoder and a framer, reading with bufSize.
func reframe(t *testing.T, body io.Reader, opts ChunkedOptions, chunk int64, bufSize int) (out []byte, framed int64, err error) {
	t.Helper()
	f, err := NewTrailerFramer(NewChunkedReader(body, opts), chunk)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, bufSize)
	for empty := 0; ; {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if int64(len(out)) > f.Len() {
			t.Fatalf("framed %d bytes, more than Len %d", len(out), f.Len())
		}
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, f.Len(), err
		}
		if n == 0 {
			if empty++; empty > 100 {
				t.Fatal("Read keeps returning 0, nil")
			}
		}
	}
}

// TestTrailerFramer re-frames every input framing with every algorithm and checks the result
// byte for byte against aws-sdk-go-v2's layout (encodeChunked's default) of the same payload.
func TestTrailerFramer(t *testing.T) {
	const chunk = 16
	sizes := []int{0, 1, chunk - 1, chunk, chunk + 1, 3*chunk + 5, 1000}
	inputs := []struct {
		name string
		mode string
		in   func(payload []byte, trailer string) []byte
	}{
		{"unsigned trailer", StreamingUnsignedTrailer, func(p []byte, tr string) []byte {
			return encodeChunked(p, frame{mode: StreamingUnsignedTrailer, chunk: 7, trailers: []trailerLine{{name: tr}}})
		}},
		{"unsigned trailer, minio-go layout", StreamingUnsignedTrailer, func(p []byte, tr string) []byte {
			return encodeChunked(p, frame{mode: StreamingUnsignedTrailer, chunk: 100, eol: "\n", minio: true, trailers: []trailerLine{{name: tr}}})
		}},
		{"signed trailer", StreamingSignedTrailer, func(p []byte, tr string) []byte {
			return encodeChunked(p, frame{mode: StreamingSignedTrailer, chunk: 33, chain: testChain(), trailers: []trailerLine{{name: tr}}})
		}},
	}
	for _, in := range inputs {
		for _, alg := range s3Checksums {
			for _, size := range sizes {
				payload := testPayload(size)
				want := encodeChunked(payload, frame{mode: StreamingUnsignedTrailer, chunk: chunk, trailers: []trailerLine{{name: alg}}})
				body := in.in(payload, alg)
				for _, sw := range sourceWrappers {
					for _, rs := range readSizes {
						name := fmt.Sprintf("%s/%s/%d bytes/%s/read %d", in.name, strings.TrimPrefix(alg, "x-amz-checksum-"), size, sw.name, rs)
						t.Run(name, func(t *testing.T) {
							opts := ChunkedOptions{Mode: in.mode, DecodedLength: int64(size), Trailers: []string{alg}}
							if in.mode == StreamingSignedTrailer {
								c := testChain()
								opts.VerifyChunk, opts.VerifyTrailer = c.verifyChunk, c.verifyTrailer
							}
							got, n, err := reframe(t, sw.wrap(bytes.NewReader(body)), opts, chunk, rs)
							if err != nil {
								t.Fatal(err)
							}
							if !bytes.Equal(got, want) {
								t.Fatalf("framed\n%q\nwant\n%q", got, want)
							}
							if n != int64(len(want)) {
								t.Fatalf("Len = %d, framed %d bytes", n, len(want))
							}
						})
					}
				}
			}
		}
	}
}

// TestTrailerFramerFails: a body that fails at any point never yields the complete framed
// body, so an upstream sent it with Content-Length = Len sees a short body and stores nothing.
func TestTrailerFramerFails(t *testing.T) {
	payload := testPayload(100)
	const alg = "x-amz-checksum-crc32c"
	good := encodeChunked(payload, frame{mode: StreamingUnsignedTrailer, chunk: 30, trailers: []trailerLine{{name: alg}}})
	tests := []struct {
		name     string
		body     []byte
		decoded  int64
		wantCode string
	}{
		{name: "wrong checksum", body: encodeChunked(payload, frame{mode: StreamingUnsignedTrailer, chunk: 30,
			trailers: []trailerLine{{name: alg, value: refChecksum(alg, []byte("other"))}}}), decoded: 100, wantCode: "BadDigest"},
		{name: "no trailer", body: encodeChunked(payload, frame{mode: StreamingUnsignedTrailer, chunk: 30}), decoded: 100, wantCode: "IncompleteBody"},
		{name: "cut in the trailer", body: good[:len(good)-8], decoded: 100, wantCode: "IncompleteBody"},
		{name: "cut in the data", body: good[:50], decoded: 100, wantCode: "IncompleteBody"},
		{name: "shorter than declared", body: good, decoded: 101, wantCode: "IncompleteBody"},
		{name: "longer than declared", body: good, decoded: 99, wantCode: "IncompleteBody"},
	}
	for _, tt := range tests {
		for _, sw := range sourceWrappers {
			t.Run(tt.name+"/"+sw.name, func(t *testing.T) {
				opts := ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: tt.decoded, Trailers: []string{alg}}
				got, n, err := reframe(t, sw.wrap(bytes.NewReader(tt.body)), opts, 16, 7)
				be, ok := errors.AsType[*Error](err)
				if !ok || be.Code != tt.wantCode {
					t.Fatalf("err = %v, want %s", err, tt.wantCode)
				}
				if int64(len(got)) >= n {
					t.Fatalf("framed all %d bytes of a failing body", n)
				}
			})
		}
	}
}

// TestTrailerFramerWaitsForTrailer: until the client's trailer has arrived and verified, the
// framer holds at least the end of the body back, whatever it was given to read into.
func TestTrailerFramerWaitsForTrailer(t *testing.T) {
	payload := testPayload(40)
	const alg = "x-amz-checksum-sha256"
	body := encodeChunked(payload, frame{mode: StreamingUnsignedTrailer, chunk: 40, trailers: []trailerLine{{name: alg}}})
	cut := bytes.Index(body, []byte("0\r\nx-amz"))
	pr, pw := io.Pipe()
	f, err := NewTrailerFramer(NewChunkedReader(pr, ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: 40, Trailers: []string{alg}}), 16)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	go func() { // ends once the framer has read the first part
		_, err := pw.Write(body[:cut])
		written <- err
	}()
	var out []byte
	buf := make([]byte, 1<<10)
	for len(out) < 40 && len(out) < int(f.Len()) {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:n]...)
		if bytes.Contains(out, []byte("0\r\n")) {
			break
		}
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(alg)) {
		t.Fatalf("trailer framed before the client's arrived: %q", out)
	}
	go func() {
		_, err := pw.Write(body[cut:])
		pw.CloseWithError(err)
	}()
	rest, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, rest...)
	want := encodeChunked(payload, frame{mode: StreamingUnsignedTrailer, chunk: 16, trailers: []trailerLine{{name: alg}}})
	if !bytes.Equal(out, want) {
		t.Fatalf("framed %q, want %q", out, want)
	}
}

// TestTrailerFramerRoundTrip decodes the framer's output again: it must give the same
// payload and trailers, for large bodies in the default chunk size too.
func TestTrailerFramerRoundTrip(t *testing.T) {
	for _, size := range []int{FrameChunkSize - 1, FrameChunkSize, 3*FrameChunkSize + 17} {
		for _, alg := range s3Checksums {
			t.Run(fmt.Sprintf("%d/%s", size, alg), func(t *testing.T) {
				payload := testPayload(size)
				body := encodeChunked(payload, frame{mode: StreamingSignedTrailer, chunk: 8 << 10, chain: testChain(), trailers: []trailerLine{{name: alg}}})
				opts := ChunkedOptions{Mode: StreamingSignedTrailer, DecodedLength: int64(size), Trailers: []string{alg}}
				framed, n, err := reframe(t, bytes.NewReader(body), opts, FrameChunkSize, 256<<10)
				if err != nil || n != int64(len(framed)) {
					t.Fatalf("framed %d of %d bytes: %v", len(framed), n, err)
				}
				dec := NewChunkedReader(bytes.NewReader(framed), ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: int64(size), Trailers: []string{alg}})
				got, err := io.ReadAll(dec)
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("decoded %d bytes: %v", len(got), err)
				}
				if v := dec.Checksums()[alg]; v != refChecksum(alg, payload) {
					t.Errorf("trailer %s = %q, want %q", alg, v, refChecksum(alg, payload))
				}
			})
		}
	}
}

func TestSetFramedHeaders(t *testing.T) {
	tests := []struct {
		name     string
		encoding []string
		want     string
	}{
		{name: "none", want: "aws-chunked"},
		{name: "aws-chunked", encoding: []string{"aws-chunked"}, want: "aws-chunked"},
		{name: "gzip first", encoding: []string{"gzip, aws-chunked"}, want: "aws-chunked,gzip"},
		{name: "aws-chunked first", encoding: []string{"aws-chunked", "gzip"}, want: "aws-chunked,gzip"},
		{name: "two others", encoding: []string{"gzip, br"}, want: "aws-chunked,gzip,br"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Transfer-Encoding": {"chunked"}, "X-Amz-Trailer": {"x-amz-checksum-crc32"}}
			if tt.encoding != nil {
				h["Content-Encoding"] = tt.encoding
			}
			SetFramedHeaders(h, 42, []string{"x-amz-checksum-crc32c"})
			want := http.Header{"Content-Encoding": {tt.want}, "X-Amz-Decoded-Content-Length": {"42"}, "X-Amz-Trailer": {"x-amz-checksum-crc32c"}}
			if len(h) != len(want) {
				t.Fatalf("got %v, want %v", h, want)
			}
			for k, v := range want {
				if !slices.Equal(h[k], v) {
					t.Errorf("%s = %q, want %q", k, h[k], v)
				}
			}
		})
	}
}

func TestStripChunkedEncoding(t *testing.T) {
	tests := []struct {
		name     string
		encoding []string
		want     []string
	}{
		{name: "none"},
		{name: "aws-chunked alone", encoding: []string{"aws-chunked"}},
		{name: "gzip, aws-chunked", encoding: []string{"gzip, aws-chunked"}, want: []string{"gzip"}},
		{name: "gzip", encoding: []string{"gzip"}, want: []string{"gzip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"X-Amz-Decoded-Content-Length": {"1"}}
			if tt.encoding != nil {
				h["Content-Encoding"] = tt.encoding
			}
			StripChunkedEncoding(h)
			if !slices.Equal(h["Content-Encoding"], tt.want) || h.Get("X-Amz-Decoded-Content-Length") != "1" {
				t.Errorf("got %v, want Content-Encoding %q", h, tt.want)
			}
		})
	}
}

// The benchmarks compare, per byte of payload, copying a plain body, decoding an aws-chunked
// one, and decoding and re-framing it: what the upstream costs signet for each way through.
func benchmarkBody(b *testing.B, size int) ([]byte, []byte, ChunkedOptions) {
	b.Helper()
	payload := testPayload(size)
	f := frame{mode: StreamingUnsignedTrailer, chunk: 64 << 10, trailers: []trailerLine{{name: "x-amz-checksum-crc32"}}}
	return payload, encodeChunked(payload, f), ChunkedOptions{Mode: f.mode, DecodedLength: int64(size), Trailers: trailerNames(f)}
}

// copyBuf is the transport's request body buffer (proxy.NewTransport).
const copyBuf = 256 << 10

func BenchmarkPlainCopy(b *testing.B) {
	payload, _, _ := benchmarkBody(b, 8<<20)
	buf := make([]byte, copyBuf)
	src := bytes.NewReader(payload)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		src.Reset(payload)
		if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{src}, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCopy(b *testing.B) {
	payload, body, opts := benchmarkBody(b, 8<<20)
	buf := make([]byte, copyBuf)
	src := bytes.NewReader(body)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		src.Reset(body)
		if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, NewChunkedReader(src, opts), buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTrailerFramer(b *testing.B) {
	for _, chunk := range []int64{FrameChunkSize, 1 << 20} {
		b.Run(fmt.Sprintf("chunk %d KiB", chunk>>10), func(b *testing.B) {
			payload, body, opts := benchmarkBody(b, 8<<20)
			buf := make([]byte, copyBuf)
			src := bytes.NewReader(body)
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				src.Reset(body)
				f, err := NewTrailerFramer(NewChunkedReader(src, opts), chunk)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, f, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
