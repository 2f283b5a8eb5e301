package signer

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The x-amz-content-sha256 values that announce an aws-chunked body this package decodes.
const (
	// StreamingSigned is a body of signed chunks and no trailer.
	StreamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	// StreamingSignedTrailer is a body of signed chunks followed by trailers and an
	// x-amz-trailer-signature.
	StreamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	// StreamingUnsignedTrailer is a body of unsigned chunks followed by unsigned trailers.
	StreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// Limits on framing. Chunk data is streamed whatever its size; only the lines around it are
// read whole, so these bound the memory a client can make a request hold.
const (
	// maxChunkLine bounds a chunk size line, which real clients keep under 100 bytes
	// ("<hex>;chunk-signature=<64 hex>\r\n"). It is also the size of the read buffer.
	maxChunkLine = 4 << 10
	// maxTrailerBytes bounds everything after the final chunk's size line.
	maxTrailerBytes = 16 << 10
	// maxChunkSizeDigits keeps a chunk size below 2^60 so sums of sizes cannot overflow.
	maxChunkSizeDigits = 15
)

const (
	chunkSignaturePrefix = "chunk-signature="
	trailerSignatureName = "x-amz-trailer-signature"
	awsChunkedEncoding   = "aws-chunked"
)

// ChunkedOptions describes an aws-chunked body, from its request headers.
type ChunkedOptions struct {
	// Mode is the x-amz-content-sha256 value: one of StreamingSigned, StreamingSignedTrailer
	// or StreamingUnsignedTrailer.
	Mode string
	// DecodedLength is x-amz-decoded-content-length, or -1 when the client did not send it.
	DecodedLength int64
	// Trailers are the lower-cased names from x-amz-trailer (may be empty). Each must be a
	// checksum trailer the decoder can verify (see [ChunkedReader]).
	Trailers []string
	// VerifyChunk, when non-nil, is called for every chunk of a signed mode (including the
	// final zero-length chunk) with the chunk's signature as sent and the SHA-256 of the chunk
	// data; a non-nil error aborts decoding (returned as a *Error with code
	// SignatureDoesNotMatch). When nil, chunk signatures are parsed (they must be 64 hex
	// digits) but not checked.
	VerifyChunk func(signature string, chunkSHA256 []byte) error
	// VerifyTrailer, when non-nil, is called in the StreamingSignedTrailer mode with the
	// x-amz-trailer-signature as sent and the trailer bytes that enter its string to sign:
	// each trailer line as "name:value\n", name lower-cased, value trimmed, in the order
	// received. Its error is mapped like VerifyChunk's. When nil, the trailer signature is
	// parsed but not checked.
	VerifyTrailer func(signature string, trailer []byte) error
}

// Error codes are the ones S3 answers with for the same fault.
func framingError(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "InvalidChunkSizeError", nil, format, args...)
}

func incompleteBody(err error, format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "IncompleteBody", err, format, args...)
}

func malformedTrailer(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "MalformedTrailerError", nil, format, args...)
}

func chunkedArgError(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "InvalidArgument", nil, format, args...)
}

// ChunkedOptionsFromHeader reports whether h describes an aws-chunked body and returns its
// options. As S3 has it, a body is framed when x-amz-content-sha256 is one of the STREAMING-*
// modes, or when Content-Encoding contains aws-chunked and x-amz-decoded-content-length is
// present. A body merely labelled aws-chunked is a plain one (the caller drops the token with
// StripChunkedEncoding). An unsupported STREAMING-* mode (e.g.
// STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD) is a *Error with status 501 NotImplemented;
// an unparsable x-amz-decoded-content-length, a trailer this package cannot verify, trailers
// in a mode that has none, or a framed body without a STREAMING-* mode (it would be stored
// framed) is a *Error with status 400 InvalidArgument.
func ChunkedOptionsFromHeader(h http.Header) (ChunkedOptions, bool, error) {
	mode := h.Get("X-Amz-Content-Sha256")
	streaming := strings.HasPrefix(mode, "STREAMING-")
	_, hasDecodedLength := h["X-Amz-Decoded-Content-Length"]
	if !streaming && !(hasDecodedLength && hasChunkedEncoding(h)) {
		return ChunkedOptions{}, false, nil
	}
	opts := ChunkedOptions{Mode: mode, DecodedLength: -1}
	switch {
	case !streaming:
		return opts, true, chunkedArgError("an aws-chunked body (content-encoding aws-chunked with x-amz-decoded-content-length) needs a STREAMING-* x-amz-content-sha256, got %q", mode)
	case !isChunkedMode(mode):
		return opts, true, newError(http.StatusNotImplemented, "NotImplemented", nil,
			"x-amz-content-sha256 %s is not supported", mode)
	}

	if vs := h.Values("X-Amz-Decoded-Content-Length"); len(vs) > 0 {
		for _, v := range vs[1:] {
			if v != vs[0] {
				return opts, true, chunkedArgError("conflicting x-amz-decoded-content-length values %q and %q", vs[0], v)
			}
		}
		n, ok := parseDecodedLength(vs[0])
		if !ok {
			return opts, true, chunkedArgError("x-amz-decoded-content-length %q is not a length", vs[0])
		}
		opts.DecodedLength = n
	}

	for _, v := range h.Values("X-Amz-Trailer") {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "" && !slices.Contains(opts.Trailers, name) {
				opts.Trailers = append(opts.Trailers, name)
			}
		}
	}
	if err := checkTrailerNames(opts.Mode, opts.Trailers); err != nil {
		return opts, true, err
	}
	return opts, true, nil
}

func isChunkedMode(mode string) bool {
	return mode == StreamingSigned || mode == StreamingSignedTrailer || mode == StreamingUnsignedTrailer
}

// checkTrailerNames rejects before any byte is forwarded what could only fail at the end of
// the body.
func checkTrailerNames(mode string, names []string) *Error {
	if len(names) > 0 && mode == StreamingSigned {
		// Trailers in this mode would not be covered by any signature.
		return chunkedArgError("x-amz-trailer is not allowed with x-amz-content-sha256 %s", mode)
	}
	for _, name := range names {
		if _, ok := trailerDigests[name]; !ok {
			return chunkedArgError("x-amz-trailer %q is not a supported checksum", name)
		}
	}
	return nil
}

// parseDecodedLength parses a non-negative decimal length; strconv.ParseInt would also take a sign.
func parseDecodedLength(s string) (int64, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func hasChunkedEncoding(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), awsChunkedEncoding) {
				return true
			}
		}
	}
	return false
}

// StripChunkedHeaders rewrites h for forwarding the decoded payload: it removes aws-chunked
// from Content-Encoding (deleting the header when nothing is left) and deletes
// x-amz-decoded-content-length, x-amz-trailer, x-amz-sdk-checksum-algorithm and
// Transfer-Encoding. The caller sets Content-Length to the decoded length.
func StripChunkedHeaders(h http.Header) {
	StripChunkedEncoding(h)
	h.Del("X-Amz-Decoded-Content-Length")
	h.Del("X-Amz-Trailer")
	h.Del("X-Amz-Sdk-Checksum-Algorithm")
	h.Del("Transfer-Encoding")
}

// StripChunkedEncoding removes aws-chunked from h's Content-Encoding, deleting the header
// when nothing is left: what S3 stores for a body labelled aws-chunked, framed or not
// (ceph/s3-tests test_object_content_encoding_aws_chunked).
func StripChunkedEncoding(h http.Header) {
	if !hasChunkedEncoding(h) {
		return // runs on every plain body: leave other codings as sent, allocate nothing
	}
	if kept := otherCodings(h); len(kept) > 0 {
		h.Set("Content-Encoding", strings.Join(kept, ", "))
	} else {
		h.Del("Content-Encoding")
	}
}

// otherCodings returns h's content codings other than aws-chunked, in order.
func otherCodings(h http.Header) []string {
	var kept []string
	for _, v := range h.Values("Content-Encoding") {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok != "" && !strings.EqualFold(tok, awsChunkedEncoding) {
				kept = append(kept, tok)
			}
		}
	}
	return kept
}

// newTrailerHash returns the hash for a checksum trailer, or nil when name is not one.
// The names and algorithms are S3's; values are the base64 of the big-endian digest.
func newTrailerHash(name string) hash.Hash {
	if d, ok := trailerDigests[name]; ok {
		return d.new()
	}
	return nil
}

// trailerDigest is a checksum trailer's algorithm and its digest size in bytes, which
// framing needs without building a hash.
type trailerDigest struct {
	size int
	new  func() hash.Hash
}

var trailerDigests = map[string]trailerDigest{
	"x-amz-checksum-crc32":     {crc32.Size, func() hash.Hash { return crc32.NewIEEE() }},
	"x-amz-checksum-crc32c":    {crc32.Size, func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }},
	"x-amz-checksum-crc64nvme": {crc64.Size, func() hash.Hash { return crc64.New(crc64NVMETable) }},
	"x-amz-checksum-sha1":      {sha1.Size, sha1.New},
	"x-amz-checksum-sha256":    {sha256.Size, sha256.New},
	// Newer SDKs (aws-sdk-go-v2 service/internal/checksum v1.11) offer SHA512.
	"x-amz-checksum-sha512": {sha512.Size, sha512.New},
}

// crc64NVMEPoly is CRC-64/NVME, reflected, as hash/crc64 wants it; init and xorout are all
// ones, which hash/crc64 applies itself.
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

// crc64NVMETable is built once: crc64.MakeTable allocates a new table for any polynomial
// but ISO and ECMA. It is never written after.
var crc64NVMETable = crc64.MakeTable(crc64NVMEPoly)

type chunkedState int

const (
	chunkedSizeLine chunkedState = iota // expecting "<hex>[;chunk-signature=<sig>]\r\n"
	chunkedData                         // inside chunk data
	chunkedDataCRLF                     // expecting the CRLF after chunk data
	chunkedTrailers                     // after the final chunk's size line, up to EOF
	chunkedDone                         // everything verified; the held byte may go
)

// trailerCheck is one declared checksum trailer.
type trailerCheck struct {
	name  string
	h     hash.Hash
	value string // as received; "" until seen
}

// ChunkedReader decodes an aws-chunked body into its payload, streaming: it holds one 4 KiB
// read buffer however large the body or its chunks, and writes chunk data straight into the
// caller's buffer.
//
// It never returns the last byte of the payload until the body has been read and checked to
// its end: final chunk, trailers, checksums and trailer signature. That byte comes with
// io.EOF. Forwarding the payload with Content-Length set to the decoded length, the transport
// therefore never finishes the upstream request body before the client's checksum is known
// to match, and a failure (returned instead of the byte) aborts the upload without an object
// being stored.
//
// Errors about the body's content are *Error: 400 InvalidChunkSizeError for bad framing,
// 400 IncompleteBody for a body that ends early or whose payload length differs from
// DecodedLength, 400 MalformedTrailerError for bad trailers, 400 BadDigest for a checksum
// mismatch, 403 SignatureDoesNotMatch when a verify callback fails. Errors from the
// underlying reader other than io.EOF are returned wrapped, so errors.Is still finds them;
// io.ErrUnexpectedEOF is wrapped in an IncompleteBody *Error.
//
// Checksum trailers: x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256 and -sha512.
type ChunkedReader struct {
	src   *bufio.Reader
	opts  ChunkedOptions
	state chunkedState
	err   error // sticky: once set, every Read returns it

	signed    bool
	chunkLeft int64    // data bytes left in the current chunk
	chunkSig  [64]byte // signature of the current chunk, as sent
	chunkHash hash.Hash
	sumBuf    [sha512.Size]byte // room for any digest, so Sum does not allocate
	received  int64             // payload bytes read from src, the held one included

	// held is the payload byte kept back until the end of the body is verified.
	held    byte
	hasHeld bool

	checks       []trailerCheck
	trailerBytes int
	trailerSig   string
	trailerCanon []byte
	checksums    map[string]string
}

// NewChunkedReader returns a reader of the decoded payload of body. Options that
// ChunkedOptionsFromHeader would reject make the first Read fail with the same *Error.
func NewChunkedReader(body io.Reader, opts ChunkedOptions) *ChunkedReader {
	r := &ChunkedReader{
		src:    bufio.NewReaderSize(body, maxChunkLine),
		opts:   opts,
		signed: opts.Mode == StreamingSigned || opts.Mode == StreamingSignedTrailer,
	}
	if !isChunkedMode(opts.Mode) {
		r.err = newError(http.StatusNotImplemented, "NotImplemented", nil, "x-amz-content-sha256 %q is not supported", opts.Mode)
		return r
	}
	if err := checkTrailerNames(opts.Mode, opts.Trailers); err != nil {
		r.err = err
		return r
	}
	for _, name := range opts.Trailers {
		if !r.declared(name) {
			r.checks = append(r.checks, trailerCheck{name: name, h: newTrailerHash(name)})
		}
	}
	if r.signed && opts.VerifyChunk != nil {
		r.chunkHash = sha256.New()
	}
	return r
}

func (r *ChunkedReader) declared(name string) bool {
	for i := range r.checks {
		if r.checks[i].name == name {
			return true
		}
	}
	return false
}

// Checksums returns the checksum trailers as received and verified (name to base64 value).
// It is nil until Read has returned io.EOF.
func (r *ChunkedReader) Checksums() map[string]string {
	if r.state != chunkedDone {
		return nil
	}
	return r.checksums
}

// Read reads decoded payload into p.
func (r *ChunkedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		var err error
		switch r.state {
		case chunkedSizeLine:
			err = r.readSizeLine()
		case chunkedData:
			var n int
			var progressed bool
			n, progressed, err = r.readData(p)
			if err == nil && (n > 0 || !progressed) {
				return n, nil
			}
			// Otherwise one byte arrived and became the held one: nothing to return yet.
		case chunkedDataCRLF:
			err = r.readDataCRLF()
		case chunkedTrailers:
			err = r.readTrailers()
		case chunkedDone:
			r.err = io.EOF
			if r.hasHeld {
				p[0] = r.held
				r.hasHeld = false
				return 1, io.EOF
			}
			return 0, io.EOF
		}
		if err != nil {
			r.err = err
			return 0, err
		}
	}
}

// bodyReadError maps an error of the underlying reader. what names the part being read.
func bodyReadError(err error, what string) error {
	switch {
	case errors.Is(err, io.EOF):
		return incompleteBody(io.ErrUnexpectedEOF, "body ended in %s", what)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return incompleteBody(err, "body ended in %s", what)
	}
	return fmt.Errorf("reading chunked body: %w", err)
}

func (r *ChunkedReader) readSizeLine() error {
	line, err := r.src.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return framingError("chunk size line longer than %d bytes", maxChunkLine)
		}
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return incompleteBody(io.ErrUnexpectedEOF, "body ended before the final chunk")
		}
		return bodyReadError(err, "a chunk size line")
	}
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return framingError("chunk size line not terminated by CRLF")
	}
	sizeField, ext, hasExt := bytes.Cut(body, []byte(";"))
	size, ok := parseChunkSize(sizeField)
	if !ok {
		return framingError("chunk size %q is not hexadecimal", truncateForMessage(sizeField))
	}
	if r.signed {
		sig, ok := bytes.CutPrefix(ext, []byte(chunkSignaturePrefix))
		if !hasExt || !ok {
			return framingError("chunk size line has no chunk-signature")
		}
		if !isHexSignature(sig) {
			return framingError("chunk-signature is not 64 hex digits")
		}
		copy(r.chunkSig[:], sig)
	} else if hasExt {
		return framingError("unexpected chunk extension in an unsigned body")
	}

	if r.opts.DecodedLength >= 0 && size > r.opts.DecodedLength-r.received {
		return incompleteBody(nil, "chunks exceed x-amz-decoded-content-length %d", r.opts.DecodedLength)
	}
	if size > 0 {
		r.chunkLeft = size
		r.state = chunkedData
		return nil
	}

	// The final chunk: its signature covers empty data, and the payload must be complete.
	if err := r.verifyChunk(); err != nil {
		return err
	}
	if r.opts.DecodedLength >= 0 && r.received != r.opts.DecodedLength {
		return incompleteBody(io.ErrUnexpectedEOF, "payload is %d bytes, x-amz-decoded-content-length is %d",
			r.received, r.opts.DecodedLength)
	}
	r.state = chunkedTrailers
	return nil
}

// parseChunkSize parses a hex chunk size, upper or lower case, leading zeros allowed.
func parseChunkSize(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	trimmed := bytes.TrimLeft(b, "0")
	if len(trimmed) > maxChunkSizeDigits {
		return 0, false
	}
	var n int64
	for _, c := range b {
		v, ok := unhexDigit(c)
		if !ok {
			return 0, false
		}
		n = n<<4 | int64(v)
	}
	return n, true
}

func unhexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isHexSignature(b []byte) bool {
	if len(b) != 2*sha256.Size {
		return false
	}
	for _, c := range b {
		if _, ok := unhexDigit(c); !ok {
			return false
		}
	}
	return true
}

// truncateForMessage keeps client bytes in error messages short.
func truncateForMessage(b []byte) string {
	const limit = 32
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}

// readData reads chunk data into p, keeping the newest byte held back. n is what p now holds
// for the caller; progressed reports whether any byte was read from the body.
func (r *ChunkedReader) readData(p []byte) (n int, progressed bool, err error) {
	// Place the held byte first and read behind it, so that no payload is copied twice.
	dst := p
	if r.hasHeld && len(p) > 1 {
		dst = p[1:]
	}
	if int64(len(dst)) > r.chunkLeft {
		dst = dst[:r.chunkLeft]
	}
	m, err := r.src.Read(dst)
	// An io.EOF that comes with the chunk's last bytes is seen again at the next read.
	if err != nil && (m == 0 || !errors.Is(err, io.EOF)) {
		return 0, m > 0, bodyReadError(err, "chunk data")
	}
	if m == 0 {
		return 0, false, nil
	}
	got := dst[:m]
	for i := range r.checks {
		r.checks[i].h.Write(got)
	}
	if r.chunkHash != nil {
		r.chunkHash.Write(got)
	}
	r.received += int64(m)
	r.chunkLeft -= int64(m)
	switch {
	case !r.hasHeld:
		n = m - 1
		r.held, r.hasHeld = p[n], true
	case len(p) > 1:
		p[0] = r.held
		n = m
		r.held = p[m]
	default: // len(p) == 1: swap the held byte with the new one
		p[0], r.held = r.held, p[0]
		n = 1
	}
	if r.chunkLeft == 0 {
		if err := r.verifyChunk(); err != nil {
			return 0, true, err
		}
		r.state = chunkedDataCRLF
	}
	return n, true, nil
}

// verifyChunk hands the chunk just read to VerifyChunk.
func (r *ChunkedReader) verifyChunk() error {
	if !r.signed || r.opts.VerifyChunk == nil {
		return nil
	}
	sum := r.chunkHash.Sum(r.sumBuf[:0])
	r.chunkHash.Reset()
	if err := r.opts.VerifyChunk(string(r.chunkSig[:]), sum); err != nil {
		return newError(http.StatusForbidden, "SignatureDoesNotMatch", err, "chunk signature does not match")
	}
	return nil
}

func (r *ChunkedReader) readDataCRLF() error {
	for _, want := range []byte("\r\n") {
		c, err := r.src.ReadByte()
		if err != nil {
			return bodyReadError(err, "the CRLF after chunk data")
		}
		if c != want {
			return framingError("chunk data not followed by CRLF: chunk longer than its size")
		}
	}
	r.state = chunkedSizeLine
	return nil
}

// readTrailers reads everything after the final chunk's size line up to the end of the body
// and verifies it. Real clients differ here, so lines may end in "\n" or "\r\n" and empty
// lines may appear anywhere or not at all:
//
//	aws-sdk-go-v2, Java v2:  0\r\n x-amz-checksum-crc32:v\r\n \r\n
//	minio-go unsigned:       0\r\n x-amz-checksum-crc32:v\n \r\n \r\n
//	Java v2 signed:          0;chunk-signature=s\r\n x-amz-checksum-crc32:v\r\n x-amz-trailer-signature:t\r\n \r\n
//	minio-go signed:         0;chunk-signature=s\r\n x-amz-checksum-crc32:v\n \r\n x-amz-trailer-signature:t\r\n \r\n
//	signed, no trailer:      0;chunk-signature=s\r\n \r\n
func (r *ChunkedReader) readTrailers() error {
	for {
		line, err := r.src.ReadSlice('\n')
		r.trailerBytes += len(line)
		if r.trailerBytes > maxTrailerBytes {
			return malformedTrailer("trailers longer than %d bytes", maxTrailerBytes)
		}
		if err != nil {
			switch {
			case errors.Is(err, bufio.ErrBufferFull):
				return malformedTrailer("trailer line longer than %d bytes", maxChunkLine)
			case errors.Is(err, io.EOF) && len(line) == 0:
				return r.finish()
			case errors.Is(err, io.EOF):
				return incompleteBody(io.ErrUnexpectedEOF, "body ended inside a trailer line")
			}
			return bodyReadError(err, "the trailers")
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		if len(line) == 0 {
			continue
		}
		if err := r.parseTrailer(line); err != nil {
			return err
		}
	}
}

func (r *ChunkedReader) parseTrailer(line []byte) error {
	rawName, rawValue, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return malformedTrailer("trailer line %q has no colon", truncateForMessage(line))
	}
	name := strings.ToLower(string(bytes.TrimSpace(rawName)))
	value := string(bytes.Trim(rawValue, " \t"))
	if r.trailerSig != "" {
		return malformedTrailer("trailer %q after x-amz-trailer-signature", truncateForMessage(rawName))
	}
	if name == trailerSignatureName {
		if r.opts.Mode != StreamingSignedTrailer {
			return malformedTrailer("x-amz-trailer-signature in a %s body", r.opts.Mode)
		}
		if !isHexSignature([]byte(value)) {
			return malformedTrailer("x-amz-trailer-signature is not 64 hex digits")
		}
		r.trailerSig = value
		return nil
	}
	for i := range r.checks {
		c := &r.checks[i]
		if c.name != name {
			continue
		}
		if c.value != "" {
			return malformedTrailer("trailer %s sent twice", name)
		}
		if value == "" {
			return malformedTrailer("trailer %s is empty", name)
		}
		c.value = value
		r.trailerCanon = append(r.trailerCanon, name...)
		r.trailerCanon = append(r.trailerCanon, ':')
		r.trailerCanon = append(r.trailerCanon, value...)
		r.trailerCanon = append(r.trailerCanon, '\n')
		return nil
	}
	return malformedTrailer("trailer %q was not declared in x-amz-trailer", truncateForMessage(rawName))
}

// finish runs at the end of the body: every declared trailer present, the trailer signature
// checked, then the checksums.
func (r *ChunkedReader) finish() error {
	for _, c := range r.checks {
		if c.value == "" {
			return incompleteBody(io.ErrUnexpectedEOF, "body ended without trailer %s", c.name)
		}
	}
	if r.opts.Mode == StreamingSignedTrailer {
		switch {
		case r.trailerSig == "" && len(r.checks) > 0:
			return incompleteBody(io.ErrUnexpectedEOF, "body ended without x-amz-trailer-signature")
		case r.trailerSig != "" && r.opts.VerifyTrailer != nil:
			if err := r.opts.VerifyTrailer(r.trailerSig, r.trailerCanon); err != nil {
				return newError(http.StatusForbidden, "SignatureDoesNotMatch", err, "trailer signature does not match")
			}
		}
	}
	sums := make(map[string]string, len(r.checks))
	for _, c := range r.checks {
		// DecodeString skips CR and LF inside the value; re-encoding catches those and any
		// other spelling but the canonical one.
		want, err := base64.StdEncoding.DecodeString(c.value)
		if err != nil || len(want) != c.h.Size() || base64.StdEncoding.EncodeToString(want) != c.value {
			return newError(http.StatusBadRequest, "InvalidRequest", nil, "value of trailer %s is not a base64 %d-byte checksum", c.name, c.h.Size())
		}
		if !bytes.Equal(c.h.Sum(r.sumBuf[:0]), want) {
			return newError(http.StatusBadRequest, "BadDigest", nil,
				"the %s you specified did not match the calculated checksum", c.name)
		}
		sums[c.name] = c.value
	}
	r.checksums = sums
	r.state = chunkedDone
	return nil
}
