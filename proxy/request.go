package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/signer"
)

// s3Request is what signet reads from an incoming request line and Host.
type s3Request struct {
	bucket string // "" for service-level requests (ListBuckets)
	key    string // decoded object key; "" for bucket-level requests
	// endpoint is signet's own endpoint the request is for (presignPath), or "". Its path
	// can never be S3's: "_signet" is no valid bucket name.
	endpoint string
}

// maxKeyLen is S3's limit on object key length, in bytes of UTF-8.
const maxKeyLen = 1024

// parseRequest finds the bucket and key of r, by virtual-hosted style when its Host is
// bucket.<suffix> and by path style otherwise.
func parseRequest(r *http.Request, suffixes []string) (s3Request, *s3Error) {
	if r.URL.Host != "" || r.URL.Opaque != "" || !strings.HasPrefix(r.URL.Path, "/") {
		// Absolute-form request lines (GET http://other/ ...) and "*": signet never takes
		// an upstream from the request.
		return s3Request{}, errInvalidURI("the request target must be a path starting with /")
	}
	bucket, err := bucketFromHost(r.Host, suffixes)
	if err != nil {
		return s3Request{}, err
	}
	var req s3Request
	if bucket == "" && r.URL.Path == presignPath {
		return s3Request{endpoint: presignPath}, nil
	}
	if bucket != "" {
		req = s3Request{bucket: bucket, key: r.URL.Path[1:]}
	} else {
		b, key, _ := strings.Cut(r.URL.Path[1:], "/")
		if b == "" && key != "" {
			return s3Request{}, errInvalidURI("the path names no bucket")
		}
		req = s3Request{bucket: b, key: key}
	}
	if req.bucket != "" {
		if err := config.CheckBucketName(req.bucket); err != nil {
			return s3Request{}, &s3Error{Status: http.StatusBadRequest, Code: "InvalidBucketName", Message: err.Error()}
		}
	}
	if err := checkKey(req.key); err != nil {
		return s3Request{}, err
	}
	return req, nil
}

// bucketFromHost returns the bucket named by a virtual-hosted-style Host, or "" when host
// addresses signet itself (path style).
func bucketFromHost(hostport string, suffixes []string) (string, *s3Error) {
	host := strings.ToLower(hostport)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || !strings.Contains(host, ".") || net.ParseIP(strings.Trim(host, "[]")) != nil {
		return "", nil // no Host (HTTP/1.0), a single label such as localhost, or an IP
	}
	for _, s := range suffixes {
		if host == s {
			return "", nil
		}
		if b, ok := strings.CutSuffix(host, "."+s); ok {
			return b, nil
		}
	}
	return "", &s3Error{
		Status: http.StatusBadRequest, Code: "InvalidArgument",
		Message: "Host " + quote(hostport) + " is neither signet's own address nor bucket.<suffix> for a configured virtual_host_suffixes entry",
	}
}

// checkKey refuses keys S3 would refuse, and keys with "." or ".." segments, which an
// upstream or anything between may normalise into another bucket's path.
func checkKey(key string) *s3Error {
	if len(key) > maxKeyLen {
		return &s3Error{Status: http.StatusBadRequest, Code: "KeyTooLongError", Message: "the key is longer than 1024 bytes"}
	}
	if !utf8.ValidString(key) {
		return errInvalidURI("the key is not valid UTF-8")
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return errInvalidURI(`keys with "." or ".." path segments are refused: an upstream may resolve them into another path`)
		}
	}
	return nil
}

// checkHeaders refuses header shapes that would let what signet checks differ from what an
// upstream reads: a header S3 reads once sent more than once (Header.Get sees the first
// copy, while every copy is signed and sent, and servers differ in which they take), a
// spelling that some server reads as one of S3's headers (x_amz_acl: CGI-style servers turn
// "_" into "-"), a method override, and protocol upgrades (S3 has none; an upstream
// answering 101 would get a raw tunnel past every check).
func checkHeaders(h http.Header) *s3Error {
	override := func(name string) *s3Error {
		return &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "method override headers (" + name + ") are refused: send the request with its own method"}
	}
	for name, vs := range h {
		// Names are lowered only when there is something to look at: this runs on every
		// header of every request.
		if strings.IndexByte(name, '_') >= 0 {
			lower := strings.ToLower(name)
			dashed := strings.ReplaceAll(lower, "_", "-")
			if methodOverride(dashed) {
				return override(name)
			}
			if !isMetaName(lower) && readOnce(dashed) {
				return &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument",
					Message: "header " + quote(name) + " is refused: some servers read it as " + dashed}
			}
		} else if methodOverride(name) {
			return override(name)
		}
		if len(vs) > 1 {
			if lower := strings.ToLower(name); readOnce(lower) {
				return &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "header " + lower + " was sent more than once; S3 reads it once"}
			}
		}
	}
	upgrade := &s3Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "connection upgrades are refused: S3 has none"}
	if _, ok := h["Upgrade"]; ok {
		return upgrade
	}
	for _, v := range h["Connection"] {
		for t := range strings.SplitSeq(v, ",") {
			switch t = strings.TrimSpace(t); {
			case t == "", strings.EqualFold(t, "keep-alive"), strings.EqualFold(t, "close"), strings.EqualFold(t, "te"):
			case strings.EqualFold(t, "upgrade"):
				return upgrade
			default:
				// A header named in Connection is dropped on the way (hop-by-hop): the
				// upstream would get a request other than the one checked.
				return &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "Connection may name only keep-alive or close, not " + quote(t)}
			}
		}
	}
	return nil
}

// readOnce reports whether S3 reads the header (a lowercase name) as one value.
func readOnce(lower string) bool {
	switch {
	case strings.HasPrefix(lower, "x-amz-"), strings.HasPrefix(lower, "content-"), strings.HasPrefix(lower, "cf-"),
		strings.HasPrefix(lower, "if-"):
		return true
	}
	switch lower {
	case "authorization", "host", "range", "expect", "cache-control", "expires", "transfer-encoding":
		return true
	}
	return methodOverride(lower)
}

// methodOverride reports whether name (in any case) is a header some servers take the
// request's method from.
func methodOverride(name string) bool {
	return strings.EqualFold(name, "x-http-method-override") || strings.EqualFold(name, "x-http-method") ||
		strings.EqualFold(name, "x-method-override")
}

// parseQuery parses a raw query exactly once. A name given twice (or in two spellings of one
// name, which some servers fold together) is refused: signet would check one value while
// the signer sorts them all and the upstream reads whichever it likes.
func parseQuery(raw string) (url.Values, *s3Error) {
	if raw == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		// Go's URL.Query would drop what it cannot parse and forward another request.
		return nil, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "the query string cannot be parsed: " + err.Error()}
	}
	seen := make(map[string]string, len(q))
	for name, vs := range q {
		if len(vs) > 1 {
			return nil, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "query parameter " + quote(name) + " was given more than once"}
		}
		l := strings.ToLower(name)
		if other, ok := seen[l]; ok {
			return nil, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "query parameters " + quote(other) + " and " + quote(name) + " name the same parameter"}
		}
		seen[l] = name
	}
	return q, nil
}

// copySource is an x-amz-copy-source as an S3 server reads it: "[/]bucket/key" percent-
// decoded, with an optional "?versionId=" suffix.
type copySource struct {
	bucket, key, versionID string
}

// parseCopySource reads the x-amz-copy-source values of a request: none, or exactly one
// that is not empty.
func parseCopySource(vs []string) (*copySource, *s3Error) {
	bad := func(msg string) (*copySource, *s3Error) {
		return nil, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "x-amz-copy-source: " + msg}
	}
	switch {
	case len(vs) == 0:
		return nil, nil
	case len(vs) > 1:
		return bad("sent more than once")
	case strings.TrimSpace(vs[0]) == "":
		return bad("empty")
	}
	p, rawQuery, hasQuery := strings.Cut(vs[0], "?")
	var cs copySource
	if hasQuery {
		q, err := url.ParseQuery(rawQuery)
		if err != nil || len(q) != 1 || len(q["versionId"]) != 1 || q.Get("versionId") == "" {
			return bad(`only a "?versionId=" may follow the key (encode a "?" in a key as %3F)`)
		}
		cs.versionID = q.Get("versionId")
	}
	decoded, err := url.PathUnescape(strings.TrimPrefix(p, "/"))
	if err != nil {
		return bad("not valid percent-encoding")
	}
	bucket, key, ok := strings.Cut(decoded, "/")
	if !ok || key == "" {
		return bad("must be bucket/key")
	}
	if err := config.CheckBucketName(bucket); err != nil {
		return bad(err.Error())
	}
	if err := checkKey(key); err != nil {
		return bad(err.Message)
	}
	if strings.Contains(key, "?") {
		// Some servers (versitygw) decode the value before cutting at "?versionId=": they
		// would read a shorter key than the one checked.
		return bad(`a "?" in the key is refused: servers disagree on where such a key ends`)
	}
	cs.bucket, cs.key = bucket, key
	return &cs, nil
}

// header is the value sent upstream for cs, with the source's upstream bucket: encoded with
// AWS's rule, so that a server decoding it once reads exactly the key signet checked.
func (cs *copySource) header(upstreamBucket string) string {
	v := "/" + upstreamBucket + "/" + signer.EscapePath(cs.key)
	if cs.versionID != "" {
		v += "?versionId=" + url.QueryEscape(cs.versionID)
	}
	return v
}

// isMetaName reports whether lower is an x-amz-meta-* name spelled with dashes: user metadata,
// whose own name may well hold underscores (user_id). A server reading its "_" as "-"
// changes only the metadata name.
func isMetaName(lower string) bool { return strings.HasPrefix(lower, "x-amz-meta-") }

// hasPrefixFold reports whether s begins with prefix, ignoring case, without allocating.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
