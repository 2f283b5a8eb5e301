package proxy

import (
	"net"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/signet-proxy/signet/config"
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
			return s3Request{}, &s3Error{status: http.StatusBadRequest, code: "InvalidBucketName", msg: err.Error()}
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
		status: http.StatusBadRequest, code: "InvalidArgument",
		msg: "Host " + quote(hostport) + " is neither signet's own address nor bucket.<suffix> for a configured virtual_host_suffixes entry",
	}
}

// checkKey refuses keys S3 would refuse, and keys with "." or ".." segments, which an
// upstream or anything between may normalise into another bucket's path.
func checkKey(key string) *s3Error {
	if len(key) > maxKeyLen {
		return &s3Error{status: http.StatusBadRequest, code: "KeyTooLongError", msg: "the key is longer than 1024 bytes"}
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

// isRead reports whether a request only reads.
func isRead(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}
