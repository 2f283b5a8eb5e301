package proxy

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// scope confines requests to key prefixes and exact keys (a route's or a client's). The
// zero scope allows everything. signet checks it before forwarding, besides asking for
// credentials that the upstream confines the same way: a request outside is refused here,
// with a clear error, and never sent.
type scope struct {
	prefixes, objects []string
}

func (s scope) unrestricted() bool { return len(s.prefixes) == 0 && len(s.objects) == 0 }

func (s scope) allowsKey(k string) bool {
	if s.unrestricted() {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	for _, o := range s.objects {
		if k == o {
			return true
		}
	}
	return false
}

// maxDeleteBody bounds a DeleteObjects body read to check its keys: S3 allows 1000 keys of
// at most 1024 bytes each.
const maxDeleteBody = 2 << 20

// check refuses r if it reaches outside the scope: an object outside it, a listing whose
// prefix is not inside it, a DeleteObjects naming a key outside it, or a bucket-level
// change. what names whose scope it is, for the message.
func (s scope) check(r *http.Request, req s3Request, q url.Values, what string) *s3Error {
	if s.unrestricted() {
		return nil
	}
	deny := func(msg string) *s3Error {
		return &s3Error{status: http.StatusForbidden, code: "AccessDenied", msg: msg + ": " + what + " is limited to " + s.describe()}
	}
	if req.key != "" {
		if !s.allowsKey(req.key) {
			return deny("the key is outside the allowed prefixes")
		}
		return nil
	}
	switch {
	case r.Method == http.MethodHead, r.Method == http.MethodGet && q.Has("location"):
		return nil // HeadBucket, GetBucketLocation: no keys revealed
	case r.Method == http.MethodGet:
		// ListObjects(V2), ListObjectVersions, ListMultipartUploads: the prefix must lie inside.
		if p := q.Get("prefix"); p != "" && s.allowsKey(p) && len(s.prefixes) > 0 {
			return nil
		}
		return deny("a listing must ask for a prefix inside the allowed ones")
	case r.Method == http.MethodPost && q.Has("delete"):
		return s.checkDelete(r, deny)
	}
	return deny("bucket-level changes are not allowed")
}

// checkDelete reads a DeleteObjects body (small and bounded), checks every key, and puts
// the body back for forwarding.
func (s scope) checkDelete(r *http.Request, deny func(string) *s3Error) *s3Error {
	if r.ContentLength < 0 || r.ContentLength > maxDeleteBody {
		return &s3Error{status: http.StatusBadRequest, code: "MalformedXML", msg: "a DeleteObjects body must have a Content-Length of at most 2 MiB"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
	if err != nil || int64(len(body)) != r.ContentLength {
		return &s3Error{status: http.StatusBadRequest, code: "IncompleteBody", msg: "the DeleteObjects body ended early"}
	}
	var doc struct {
		Objects []struct {
			Key string `xml:"Key"`
		} `xml:"Object"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return &s3Error{status: http.StatusBadRequest, code: "MalformedXML", msg: "the DeleteObjects body is not valid XML"}
	}
	for _, o := range doc.Objects {
		if !s.allowsKey(o.Key) {
			return deny("DeleteObjects names a key outside the allowed prefixes")
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

func (s scope) describe() string {
	var parts []string
	for _, p := range s.prefixes {
		parts = append(parts, "prefix "+quote(p))
	}
	for _, o := range s.objects {
		parts = append(parts, "key "+quote(o))
	}
	return strings.Join(parts, ", ")
}

// copySourceKey decodes the key of an x-amz-copy-source value's "key[?versionId=...]".
func copySourceKey(encoded string) string {
	k, _, _ := strings.Cut(encoded, "?")
	if d, err := url.PathUnescape(k); err == nil {
		return d
	}
	return k
}
