package proxy

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strings"
)

// scrubErrorBody keeps signed material out of an upstream error answer relayed to the
// client. S3's (and versitygw's) SignatureDoesNotMatch echoes the canonical request and
// the string to sign, which hold every signed header, x-amz-security-token included: with
// R2 temporary credentials that token is the credential itself (the secret is the SHA-256
// of the JWT inside it), and any client can provoke the mismatch. The elements that carry
// it are dropped as the body streams, and any other copy of the session token is
// redacted. Bodies of successful answers are never touched.
func scrubErrorBody(resp *http.Response, sessionToken string) {
	if resp.StatusCode < 300 || resp.Body == nil || resp.Body == http.NoBody {
		return
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/xml" && mt != "text/xml" && mt != "" {
		return
	}
	var src io.ReadCloser = &elementStripper{src: resp.Body}
	if sessionToken != "" {
		src = &replacingBody{src: src, closer: resp.Body, pairs: [][2][]byte{{[]byte(sessionToken), []byte("REDACTED")}}, longest: len(sessionToken)}
	}
	resp.Body = src
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
}

// strippedElement reports whether an error element named name carries signed material.
func strippedElement(name string) bool {
	switch name {
	case "CanonicalRequest", "CanonicalRequestBytes", "StringToSign", "StringToSignBytes",
		"SignatureProvided", "AWSAccessKeyId":
		return true
	}
	return strings.Contains(name, "Token")
}

// maxTagName bounds how far elementStripper looks for the end of a tag's name; longer
// names are passed through (none of the stripped ones is that long).
const maxTagName = 64

// elementStripper drops whole elements that strippedElement names, start tag to end tag, as
// the body streams. It holds back only an unfinished tag name at the end of what it read.
type elementStripper struct {
	src  io.ReadCloser
	in   []byte // read, not yet scanned
	out  []byte // scanned, not yet returned
	skip string // the element being dropped, or ""
	buf  []byte // read buffer, allocated once
	err  error
}

func (s *elementStripper) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.buf == nil {
			s.buf = make([]byte, 32<<10)
		}
		n, err := s.src.Read(s.buf)
		s.in = append(s.in, s.buf[:n]...)
		s.err = err
		s.scan()
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// scan moves what it can of in to out, dropping stripped elements.
func (s *elementStripper) scan() {
	ended := s.err != nil
	for len(s.in) > 0 {
		if s.skip != "" {
			end := "</" + s.skip + ">"
			i := bytes.Index(s.in, []byte(end))
			if i < 0 {
				keep := min(len(s.in), len(end)-1)
				if ended {
					keep = 0
				}
				s.in = s.in[len(s.in)-keep:]
				return
			}
			s.in, s.skip = s.in[i+len(end):], ""
			continue
		}
		i := bytes.IndexByte(s.in, '<')
		if i < 0 {
			s.out, s.in = append(s.out, s.in...), s.in[:0]
			return
		}
		s.out = append(s.out, s.in[:i]...)
		s.in = s.in[i:]
		j := bytes.IndexByte(s.in, '>')
		if j < 0 && len(s.in) < maxTagName && !ended {
			return // the tag's name may go on in the next read
		}
		if j > 0 {
			if name := string(s.in[1:j]); strippedElement(name) {
				s.skip, s.in = name, s.in[j+1:]
				continue
			}
		}
		s.out, s.in = append(s.out, '<'), s.in[1:]
	}
}

func (s *elementStripper) Close() error { return s.src.Close() }
