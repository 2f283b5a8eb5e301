package signer

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"strconv"
	"strings"
)

// FrameChunkSize is the payload bytes per chunk of the bodies [TrailerFramer] writes:
// aws-sdk-go-v2's own chunk length for unsigned-trailer uploads, so upstreams see the layout
// they see from the SDK. Chunks cost a dozen framing bytes each, so a larger size would save
// nothing measurable (see BenchmarkTrailerFramer).
const FrameChunkSize = 64 << 10

// maxFramedPayload bounds the decoded length FramedLength takes, so the sum cannot overflow.
const maxFramedPayload = 1 << 60

// FramedLength returns the exact length of the STREAMING-UNSIGNED-PAYLOAD-TRAILER body that
// frames decodedLength payload bytes in chunks of chunkSize and ends with the named checksum
// trailers: the Content-Length to send it with, known before a byte of it is read.
func FramedLength(decodedLength, chunkSize int64, trailers []string) (int64, error) {
	if decodedLength < 0 || decodedLength > maxFramedPayload {
		return 0, fmt.Errorf("frame %d payload bytes: length out of range", decodedLength)
	}
	if chunkSize <= 0 {
		return 0, fmt.Errorf("frame in chunks of %d bytes: chunk size must be positive", chunkSize)
	}
	full, rest := decodedLength/chunkSize, decodedLength%chunkSize
	n := full * (hexLen(chunkSize) + 4 + chunkSize) // "<hex>\r\n<data>\r\n"
	if rest > 0 {
		n += hexLen(rest) + 4 + rest
	}
	n += int64(len("0\r\n"))
	for _, name := range trailers {
		d, ok := trailerDigests[name]
		if !ok {
			return 0, fmt.Errorf("frame trailer %q: not a supported checksum", name)
		}
		n += int64(len(name) + len(":") + base64.StdEncoding.EncodedLen(d.size) + len("\r\n"))
	}
	return n + int64(len("\r\n")), nil
}

// hexLen is the number of lowercase hex digits of n > 0.
func hexLen(n int64) int64 { return int64(bits.Len64(uint64(n))+3) / 4 }

// TrailerFramer re-frames the payload of a [ChunkedReader] as a
// STREAMING-UNSIGNED-PAYLOAD-TRAILER body: chunks of FrameChunkSize bytes (the last one
// shorter), the final zero chunk, then each checksum trailer the client declared, carrying
// the value the decoder verified.
//
// Whatever the client's framing (chunk-signed or not, any chunk sizes, signed trailer or
// not), what goes upstream is one layout whose length [TrailerFramer.Len] knows in advance,
// so it is sent with a Content-Length. The trailer is written only after the decoder has
// returned io.EOF, that is once framing, chunk signatures, trailer signature and checksum
// all verified: a body that fails ends short of its Content-Length, and the upstream never
// sees a complete upload. Its errors are the decoder's, unchanged.
//
// Payload bytes are read from the decoder straight into the caller's buffer: one copy, no
// buffer of its own beyond a few framing bytes.
type TrailerFramer struct {
	src       *ChunkedReader
	chunkSize int64
	length    int64 // the framed length
	left      int64 // payload bytes not yet read from src
	chunkLeft int64 // payload bytes left in the current chunk

	pending []byte // framing to write before anything else
	line    [2 + 16 + 2]byte
	srcEOF  bool // src returned io.EOF: its trailers are verified
	ended   bool // the trailer is in pending; after it, io.EOF
	err     error
}

// NewTrailerFramer returns a framer over dec, whose options must carry the decoded length.
func NewTrailerFramer(dec *ChunkedReader, chunkSize int64) (*TrailerFramer, error) {
	names := dec.TrailerNames()
	n, err := FramedLength(dec.opts.DecodedLength, chunkSize, names)
	if err != nil {
		return nil, err
	}
	f := &TrailerFramer{src: dec, chunkSize: chunkSize, length: n, left: dec.opts.DecodedLength}
	f.startChunk("")
	return f, nil
}

// Len is the framed body's length.
func (f *TrailerFramer) Len() int64 { return f.length }

// startChunk queues sep and the size line of the next chunk, if payload is left.
func (f *TrailerFramer) startChunk(sep string) {
	b := append(f.line[:0], sep...)
	if f.left > 0 {
		f.chunkLeft = min(f.chunkSize, f.left)
		b = strconv.AppendInt(b, f.chunkLeft, 16)
		b = append(b, "\r\n"...)
	}
	f.pending = b
}

// errFramedLength: the decoder enforces x-amz-decoded-content-length, so this would be a bug.
var errFramedLength = errors.New("reframe aws-chunked body: payload length differs from the decoded length")

// Read writes the framed body into p. It reads the decoder at most once per call, so a
// slow client never holds back framing that is ready, and returns an error (io.EOF
// included) only with no bytes.
func (f *TrailerFramer) Read(p []byte) (int, error) {
	n := 0
	readSrc := false
	for n < len(p) {
		if len(f.pending) > 0 {
			c := copy(p[n:], f.pending)
			n += c
			f.pending = f.pending[c:]
			continue
		}
		switch {
		case f.err != nil && n > 0:
			// The error comes alone, at the next call: a transport that got bytes with an
			// error would write them first, and a guard that resets the upstream connection
			// on the error would then make the write fail, hiding the body's error behind a
			// write error.
			return n, nil
		case f.err != nil:
			return 0, f.err
		case f.ended:
			f.err = io.EOF
		case f.srcEOF:
			// Only now, with everything verified, can the body be completed.
			f.pending = f.trailer()
			f.ended = true
		case readSrc:
			return n, nil
		case f.chunkLeft > 0:
			readSrc = true
			m, err := f.src.Read(p[n : n+int(min(int64(len(p)-n), f.chunkLeft))])
			n += m
			f.chunkLeft -= int64(m)
			f.left -= int64(m)
			if err := f.srcDone(err); err != nil {
				f.err = err
				continue
			}
			if f.chunkLeft == 0 {
				f.startChunk("\r\n")
			}
		default:
			// The whole payload is read; the decoder's io.EOF, which says the trailer
			// verified, may still be to come.
			readSrc = true
			var one [1]byte
			m, err := f.src.Read(one[:])
			if m > 0 {
				f.err = errFramedLength
				continue
			}
			if err := f.srcDone(err); err != nil {
				f.err = err
			}
		}
	}
	return n, nil
}

// srcDone handles the decoder's error after a read.
func (f *TrailerFramer) srcDone(err error) error {
	switch {
	case err == nil:
		return nil
	case err != io.EOF:
		return err
	case f.left != 0:
		return errFramedLength
	}
	f.srcEOF = true
	return nil
}

// trailer is the final chunk and the verified checksum trailers.
func (f *TrailerFramer) trailer() []byte {
	sums := f.src.Checksums()
	b := []byte("0\r\n")
	for _, name := range f.src.TrailerNames() {
		b = append(b, name...)
		b = append(b, ':')
		b = append(b, sums[name]...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// TrailerNames returns the checksum trailers r verifies: those the client declared, in
// order, once each.
func (r *ChunkedReader) TrailerNames() []string {
	names := make([]string, len(r.checks))
	for i := range r.checks {
		names[i] = r.checks[i].name
	}
	return names
}

// SetFramedHeaders rewrites h for forwarding a [TrailerFramer] body of decodedLength payload
// bytes with the named trailers: Content-Encoding is aws-chunked followed by the client's
// other codings, comma-separated without spaces, as AWS documents it ("aws-chunked,gzip";
// S3 strips the token before storing, so the object keeps the rest, and MinIO strips it only
// spelled so),
// x-amz-decoded-content-length and x-amz-trailer are set, Transfer-Encoding is deleted. The
// caller signs with StreamingUnsignedTrailer and sets Content-Length to the framer's Len.
func SetFramedHeaders(h http.Header, decodedLength int64, trailers []string) {
	codings := append([]string{awsChunkedEncoding}, otherCodings(h)...)
	h.Set("Content-Encoding", strings.Join(codings, ","))
	h.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(decodedLength, 10))
	h.Set("X-Amz-Trailer", strings.Join(trailers, ","))
	h.Del("Transfer-Encoding")
}
