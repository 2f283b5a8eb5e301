package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// aws-chunked uploads, as SDKs send them (protocol-facts.md): the body framed in chunks of
// chunkedChunkSize, either each chunk signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, minio-go)
// or unsigned with a CRC32 checksum trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER, the JS
// SDK). The encoder streams: nothing of a 1 GiB body is held whole.

const chunkedChunkSize = 64 << 10 // what minio-go and the SDKs use

const (
	modeSigned  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	modeTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// chunkedLength is the framed length of a size-byte body in mode.
func chunkedLength(mode string, size int64) int64 {
	line := func(n int64) int64 {
		l := int64(len(strconv.FormatInt(n, 16))) + 2 // size, CRLF
		if mode == modeSigned {
			l += int64(len(";chunk-signature=")) + 64
		}
		return l
	}
	full, rest := size/chunkedChunkSize, size%chunkedChunkSize
	n := full * (line(chunkedChunkSize) + chunkedChunkSize + 2)
	if rest > 0 {
		n += line(rest) + rest + 2
	}
	n += line(0)
	if mode == modeTrailer {
		n += int64(len("x-amz-checksum-crc32:")) + 8 + 2 // base64 of 4 bytes, CRLF
	}
	return n + 2 // the final CRLF
}

// chunkedBody frames src (size bytes) in mode.
type chunkedBody struct {
	src     io.Reader
	mode    string
	left    int64
	buf     []byte
	pending []byte // framed bytes not yet read
	done    bool
	crc     uint32
	// chunk-signed: the signature chain
	key, prev  []byte
	date       string // yyyymmddThhmmssZ
	scope      string
	emptyHash  string
	stringHash []byte
}

// newChunkedRequest builds a PUT of src framed in mode, to url; for chunk-signed bodies the
// header signature (the seed) and each chunk's are computed with the upstream's key, as a
// client holding it would.
func (c *client) newChunkedRequest(req *http.Request, u *upstream, mode string, src io.Reader, size int64) error {
	req.ContentLength = chunkedLength(mode, size)
	h := req.Header
	h.Set("Content-Encoding", "aws-chunked")
	h.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(size, 10))
	h.Set("X-Amz-Content-Sha256", mode)
	b := &chunkedBody{src: src, mode: mode, left: size, buf: make([]byte, chunkedChunkSize)}
	if mode == modeTrailer {
		h.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		req.Body = io.NopCloser(b)
		return nil
	}
	now := time.Now().UTC()
	b.date = now.Format("20060102T150405Z")
	b.scope = now.Format("20060102") + "/" + u.region + "/s3/aws4_request"
	if err := c.signChunkedSeed(req, u, now); err != nil {
		return err
	}
	_, sig, ok := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	if !ok {
		return fmt.Errorf("chunked seed: no signature")
	}
	b.prev = []byte(sig)
	k := hmacSum([]byte("AWS4"+u.secretKey), now.Format("20060102"))
	k = hmacSum(k, u.region)
	k = hmacSum(k, "s3")
	b.key = hmacSum(k, "aws4_request")
	e := sha256.Sum256(nil)
	b.emptyHash = hex.EncodeToString(e[:])
	req.Body = io.NopCloser(b)
	return nil
}

// signChunkedSeed signs req's headers with u's key (the seed signature of a chunk-signed
// body), whether or not the client signs its other requests: a proxy strips it anyway.
func (c *client) signChunkedSeed(req *http.Request, u *upstream, now time.Time) error {
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	cr := aws.Credentials{AccessKeyID: u.accessKey, SecretAccessKey: u.secretKey, Source: "static"}
	if err := s.SignHTTP(req.Context(), cr, req, modeSigned, "s3", u.region, now); err != nil {
		return fmt.Errorf("sign chunked seed: %w", err)
	}
	return nil
}

func hmacSum(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	for len(b.pending) == 0 {
		if b.done {
			return 0, io.EOF
		}
		if err := b.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

// next frames the next chunk (the final zero-length one when the source is done).
func (b *chunkedBody) next() error {
	n := min(b.left, chunkedChunkSize)
	data := b.buf[:n]
	if _, err := io.ReadFull(b.src, data); err != nil {
		return fmt.Errorf("chunked body source: %w", err)
	}
	b.left -= n
	out := make([]byte, 0, n+128)
	out = strconv.AppendInt(out, n, 16)
	if b.mode == modeSigned {
		sum := sha256.Sum256(data)
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + b.date + "\n" + b.scope + "\n" + string(b.prev) + "\n" + b.emptyHash + "\n" + hex.EncodeToString(sum[:])
		sig := hex.EncodeToString(hmacSum(b.key, sts))
		b.prev = []byte(sig)
		out = append(append(out, ";chunk-signature="...), sig...)
	} else {
		b.crc = crc32.Update(b.crc, crc32.IEEETable, data)
	}
	out = append(out, "\r\n"...)
	if n > 0 {
		out = append(append(out, data...), "\r\n"...)
	} else {
		if b.mode == modeTrailer {
			var c [4]byte
			c[0], c[1], c[2], c[3] = byte(b.crc>>24), byte(b.crc>>16), byte(b.crc>>8), byte(b.crc)
			out = append(append(append(out, "x-amz-checksum-crc32:"...), base64.StdEncoding.EncodeToString(c[:])...), "\r\n"...)
		}
		out = append(out, "\r\n"...)
		b.done = true
	}
	b.pending = out
	return nil
}
