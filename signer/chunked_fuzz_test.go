package signer

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

var fuzzModes = []string{StreamingSigned, StreamingSignedTrailer, StreamingUnsignedTrailer}

// FuzzChunkedReader feeds arbitrary bodies to the decoder. Whatever the input, it must not
// panic or spin, never return more than DecodedLength bytes, never return the whole payload
// of a body that fails, and at io.EOF the bytes returned must match the trailer checksum.
func FuzzChunkedReader(f *testing.F) {
	payload := testPayload(300)
	for mi, mode := range fuzzModes {
		for ti := range len(checksumNames) + 1 {
			fr := frame{mode: mode, chunk: 100}
			if ti > 0 && mode != StreamingSigned {
				fr.trailers = []trailerLine{{name: checksumNames[ti-1]}}
			}
			f.Add(encodeChunked(payload, fr), uint8(mi), uint8(ti), int64(len(payload)), uint16(4096), false)
			fr.eol, fr.minio = "\n", true
			f.Add(encodeChunked(payload[:7], fr), uint8(mi), uint8(ti), int64(7), uint16(1), true)
		}
		f.Add(encodeChunked(nil, frame{mode: mode}), uint8(mi), uint8(0), int64(0), uint16(10), false)
	}
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"), uint8(2), uint8(1), int64(5), uint16(3), false)
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"), uint8(2), uint8(1), int64(-1), uint16(2), true)

	f.Fuzz(func(t *testing.T, body []byte, modeIndex, trailerIndex uint8, decodedLength int64, readSize uint16, oneByte bool) {
		mode := fuzzModes[int(modeIndex)%len(fuzzModes)]
		opts := ChunkedOptions{Mode: mode, DecodedLength: max(decodedLength, -1)}
		var trailer string
		if ti := int(trailerIndex) % (len(checksumNames) + 1); ti > 0 && mode != StreamingSigned {
			trailer = checksumNames[ti-1]
			opts.Trailers = []string{trailer}
		}
		if mode != StreamingUnsignedTrailer {
			opts.VerifyChunk = func(sig string, sum []byte) error {
				if !isHexSignature([]byte(sig)) || len(sum) != 32 {
					t.Fatalf("VerifyChunk(%q, %x)", sig, sum)
				}
				return nil
			}
		}
		var src io.Reader = bytes.NewReader(body)
		if oneByte {
			src = iotest.OneByteReader(src)
		}
		r := NewChunkedReader(src, opts)
		buf := make([]byte, 1+int(readSize)%(40<<10))
		var out []byte
		var err error
		for empty := 0; err == nil; {
			var n int
			n, err = r.Read(buf)
			out = append(out, buf[:n]...)
			if opts.DecodedLength >= 0 && int64(len(out)) > opts.DecodedLength {
				t.Fatalf("returned %d bytes, more than the decoded length %d", len(out), opts.DecodedLength)
			}
			if n == 0 && err == nil {
				if empty++; empty > 10 {
					t.Fatal("Read keeps returning 0, nil")
				}
			}
		}
		if err != io.EOF {
			if be, ok := errors.AsType[*Error](err); !ok || be.Status == 0 || be.Code == "" {
				t.Fatalf("err = %v, want a *Error", err)
			}
			if opts.DecodedLength > 0 && int64(len(out)) >= opts.DecodedLength {
				t.Fatalf("failed with %v after returning all %d bytes", err, len(out))
			}
			return
		}
		if opts.DecodedLength >= 0 && int64(len(out)) != opts.DecodedLength {
			t.Fatalf("EOF after %d bytes, decoded length %d", len(out), opts.DecodedLength)
		}
		if trailer != "" {
			if got, want := r.Checksums()[trailer], refChecksum(trailer, out); got != want {
				t.Fatalf("EOF with %s %q, but the bytes returned have %q", trailer, got, want)
			}
		}
	})
}

// FuzzTrailerFramer re-frames arbitrary bodies. Whatever the input, the framer must never
// write more than Len, must write exactly Len only when the decoder verified the body, and
// what it writes then must decode again to the same payload and the trailer values verified.
func FuzzTrailerFramer(f *testing.F) {
	payload := testPayload(300)
	for mi, mode := range fuzzModes {
		for ti := range len(checksumNames) + 1 {
			fr := frame{mode: mode, chunk: 100}
			if ti > 0 && mode != StreamingSigned {
				fr.trailers = []trailerLine{{name: checksumNames[ti-1]}}
			}
			f.Add(encodeChunked(payload, fr), uint8(mi), uint8(ti), int64(len(payload)), uint16(4096), uint16(64))
		}
	}
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"), uint8(2), uint8(1), int64(5), uint16(3), uint16(2))

	f.Fuzz(func(t *testing.T, body []byte, modeIndex, trailerIndex uint8, decodedLength int64, readSize, chunkSize uint16) {
		mode := fuzzModes[int(modeIndex)%len(fuzzModes)]
		opts := ChunkedOptions{Mode: mode, DecodedLength: max(decodedLength, 0) % (1 << 20)}
		if ti := int(trailerIndex) % (len(checksumNames) + 1); ti > 0 && mode != StreamingSigned {
			opts.Trailers = []string{checksumNames[ti-1]}
		}
		dec := NewChunkedReader(bytes.NewReader(body), opts)
		fr, err := NewTrailerFramer(dec, 1+int64(chunkSize))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1+int(readSize)%(40<<10))
		var out []byte
		for empty := 0; err == nil; {
			var n int
			n, err = fr.Read(buf)
			out = append(out, buf[:n]...)
			if int64(len(out)) > fr.Len() {
				t.Fatalf("framed %d bytes, more than Len %d", len(out), fr.Len())
			}
			if n == 0 && err == nil {
				if empty++; empty > 10 {
					t.Fatal("Read keeps returning 0, nil")
				}
			}
		}
		if err != io.EOF {
			if int64(len(out)) >= fr.Len() {
				t.Fatalf("failed with %v after framing all %d bytes", err, len(out))
			}
			return
		}
		if int64(len(out)) != fr.Len() {
			t.Fatalf("EOF after %d bytes, Len %d", len(out), fr.Len())
		}
		again := NewChunkedReader(bytes.NewReader(out), ChunkedOptions{Mode: StreamingUnsignedTrailer, DecodedLength: opts.DecodedLength, Trailers: opts.Trailers})
		got, err := io.ReadAll(again)
		if err != nil || int64(len(got)) != opts.DecodedLength {
			t.Fatalf("framed body does not decode: %d bytes, %v", len(got), err)
		}
		for name, v := range dec.Checksums() {
			if again.Checksums()[name] != v {
				t.Fatalf("trailer %s = %q, verified %q", name, again.Checksums()[name], v)
			}
		}
	})
}
