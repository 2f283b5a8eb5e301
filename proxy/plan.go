package proxy

import (
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/signet-proxy/signet/signer"
)

// plan is everything signet decides about one request, made once by decide before anything
// is forwarded, on the request exactly as it will be signed and sent: the query as it will
// be encoded, the copy source as an S3 server reads it, the body as it will arrive. Every
// later step (the body, Rewrite, the signing transport, ModifyResponse, ErrorHandler, the
// log line and metrics) reads it and never derives anything again. It is not changed after
// decide returns; what happens while forwarding is an outcome.
type plan struct {
	id     string
	method string
	// bucket and key are the client's names: bucket local, key decoded. bucket is "" for
	// ListBuckets and signet's own endpoints.
	bucket, key string
	// endpoint is signet's own endpoint the request is for (presignPath), or "".
	endpoint string
	action   action
	// query is the query as it will be sent: the client's, less its authentication.
	// rawQuery is its encoding, which the signer signs as it is.
	query    url.Values
	rawQuery string
	// copySource is the x-amz-copy-source value to send, naming the upstream bucket; "" when
	// the request copies nothing.
	copySource string
	route      *Route // nil for ListBuckets and endpoints
	upBucket   string
	// client and verified are the identity that signed the request, when clients are
	// configured.
	client   *client
	verified *signer.Verified
	body     bodyPlan
	// origin is the allowed web origin of a browser request, answered with CORS headers;
	// preflight is set when the request is that origin's CORS preflight, which signet
	// answers itself.
	origin    string
	preflight bool
}

// bodyPlan is how the request body goes upstream.
type bodyPlan struct {
	// chunked is set for aws-chunked bodies that signet decodes.
	chunked *signer.ChunkedOptions
	// reframe is set when a decoded body goes upstream framed again, as
	// STREAMING-UNSIGNED-PAYLOAD-TRAILER with the checksum trailers the client sent and
	// signet verified: the only way a trailer checksum reaches the upstream, since it is
	// known only once the whole body has been read.
	reframe bool
	// payloadHash is what the upstream request is signed with.
	payloadHash string
	// checked is a body signet read whole to check it (a DeleteObjects document on a scoped
	// route), decoded and verified: what is sent. nil otherwise.
	checked []byte
	// contentMD5 is sent with checked when the client's own checksum came in an aws-chunked
	// trailer, which does not go with a plain body: S3 needs one on DeleteObjects.
	contentMD5 string
}

// decide parses, authenticates, routes and authorizes r against table t, and returns the
// plan, or why signet refuses the request. r is not changed; its body is read only for a
// DeleteObjects document that a scope must check (see bodyPlan.checked).
func (h *Handler) decide(r *http.Request, t *Table, id string) (*plan, *s3Error) {
	p := &plan{id: id, method: r.Method}
	if !s3Method(r.Method) {
		return p, &s3Error{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed", Message: "signet forwards only GET, HEAD, PUT, POST, DELETE and OPTIONS"}
	}
	req, err := parseRequest(r, t.suffixes)
	if err != nil {
		return p, err
	}
	p.bucket, p.key, p.endpoint = req.bucket, req.key, req.endpoint
	if err := checkHeaders(r.Header); err != nil {
		return p, err
	}
	if p.origin, err = checkBrowser(r, t.origins); err != nil {
		return p, err
	}
	if p.preflight = p.origin != "" && isPreflight(r); p.preflight {
		return p, nil // carries no authentication; nothing is forwarded
	}
	if t.clients != nil {
		// Authenticate before anything else is revealed, even whether a bucket is routed.
		if p.client, p.verified, err = t.clients.authenticate(r); err != nil {
			return p, err
		}
	}
	if p.query, err = parseQuery(r.URL.RawQuery); err != nil {
		return p, err
	}
	signer.Strip(nil, p.query)
	p.rawQuery = p.query.Encode()
	for name, v := range p.query {
		// Any spelling: some servers (MinIO) read query names without regard to case.
		if strings.EqualFold(name, "response-content-type") && activeContentType(v[0]) {
			// Served on signet's origin, the same as every route's, such an object would
			// run with the rights to read them all.
			return p, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "response-content-type " + quote(v[0]) + " is refused: a browser would run it as a page or script"}
		}
	}

	switch {
	case p.endpoint != "":
		if r.Method != http.MethodPost {
			return p, &s3Error{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed", Message: "only POST is allowed on " + p.endpoint}
		}
		p.action = actPresign // the endpoint authorizes what it is asked for
		return p, nil
	case p.bucket == "":
		if r.Method != http.MethodGet {
			return p, &s3Error{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed", Message: "only GET (ListBuckets) is allowed on /"}
		}
		p.action = actListBuckets // each bucket listed is authorized
		return p, nil
	}

	src, err := parseCopySource(r.Header.Values("X-Amz-Copy-Source"))
	if err != nil {
		return p, err
	}
	if src != nil && r.Method != http.MethodPut {
		return p, &s3Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "x-amz-copy-source is only for PUT (CopyObject, UploadPartCopy)"}
	}
	p.action = classify(r.Method, p.bucket, p.key, p.query, src != nil)
	a := access{action: p.action, write: writes(r.Method), bucket: p.bucket, key: p.key, extensions: keyReachingHeaders(r.Header)}
	if p.action.isListing() {
		a.prefix = p.query.Get("prefix")
		if err := checkKey(a.prefix); err != nil {
			return p, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "prefix: " + err.Message}
		}
	}
	p.route = t.Lookup(p.bucket)
	if p.route == nil {
		if err := authorize(p.client, nil, a); err != nil {
			return p, err
		}
	}
	p.upBucket = p.route.UpstreamBucket(p.bucket)
	if p.body, err = planBody(r); err != nil {
		return p, err
	}
	if p.action == actDeleteObjects && scoped(p.client, p.route) {
		// The checked bytes go as they are, plain.
		p.body.reframe, p.body.payloadHash = false, signer.UnsignedPayload
		if p.body.checked, err = h.readChecked(r, p); err != nil {
			return p, err
		}
		if a.keys, err = deleteKeys(p.body.checked); err != nil {
			return p, err
		}
		if p.body.chunked != nil && !hasChecksumHeader(r.Header) {
			sum := md5.Sum(p.body.checked)
			p.body.contentMD5 = base64.StdEncoding.EncodeToString(sum[:])
		}
	}
	if err := authorize(p.client, p.route, a); err != nil {
		return p, err
	}
	if src != nil {
		if p.copySource, err = copySourceHeader(t, p, src); err != nil {
			return p, err
		}
	}
	return p, nil
}

// copySourceHeader authorizes reading src for the copy p plans, and returns the
// x-amz-copy-source to send: the source must be routed to the same upstream as the
// destination (one signature cannot span two accounts) and readable by the route and the
// client.
func copySourceHeader(t *Table, p *plan, src *copySource) (string, *s3Error) {
	rt := t.Lookup(src.bucket)
	if err := authorize(p.client, rt, access{action: actGetObject, bucket: src.bucket, key: src.key}); err != nil {
		err.Message = "copy source: " + err.Message
		return "", err
	}
	dst := p.route
	if rt.Upstream != dst.Upstream {
		return "", &s3Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: fmt.Sprintf(
			"copy source bucket %q is in account %s jurisdiction %s but the destination is in account %s jurisdiction %s: "+
				"an upstream cannot copy across accounts or jurisdictions; download and upload instead",
			src.bucket, rt.Upstream.Account, rt.Upstream.Jurisdiction, dst.Upstream.Account, dst.Upstream.Jurisdiction)}
	}
	up := rt.UpstreamBucket(src.bucket)
	if dst.Upstream.BucketScoped && up != p.upBucket {
		return "", &s3Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: fmt.Sprintf(
			"copy from bucket %q to bucket %q: account %s signs with temporary credentials that each cover one bucket, "+
				"so no single signature can copy between two buckets; download and upload instead, or give the account static credentials",
			src.bucket, p.bucket, dst.Upstream.Account)}
	}
	return src.header(up), nil
}

// s3Method reports whether S3 has requests with method m. Others are refused: an upstream
// has nothing to do with them, and metrics label requests by method.
func s3Method(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// s3Methods are the methods s3Method accepts, for tables indexed by method.
var s3Methods = [...]string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions}

// planBody decides how r's body goes upstream: as it came, or, for aws-chunked bodies,
// decoded and verified, then sent with a Content-Length (R2 refuses chunk-signed uploads and
// bodies without one): framed again as STREAMING-UNSIGNED-PAYLOAD-TRAILER when the client
// sent checksum trailers, so the upstream stores and checks the client's checksum, plain
// otherwise.
func planBody(r *http.Request) (bodyPlan, *s3Error) {
	b := bodyPlan{payloadHash: signer.UnsignedPayload}
	opts, chunked, err := signer.ChunkedOptionsFromHeader(r.Header)
	if err != nil {
		return b, bodyS3Error(err, "InvalidArgument", "")
	}
	switch {
	case chunked && opts.DecodedLength < 0:
		return b, &s3Error{Status: http.StatusLengthRequired, Code: "MissingContentLength", Message: "an aws-chunked body needs x-amz-decoded-content-length: the upstream needs to know the body's length"}
	case chunked:
		b.chunked = &opts
		if len(opts.Trailers) > 0 {
			if _, err := signer.FramedLength(opts.DecodedLength, signer.FrameChunkSize, opts.Trailers); err != nil {
				return b, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "x-amz-decoded-content-length: " + err.Error()}
			}
			b.reframe, b.payloadHash = true, signer.StreamingUnsignedTrailer
		}
	case r.ContentLength < 0:
		// Transfer-Encoding: chunked with no length: R2 refuses it (411), and forwarding
		// it as it came would hide that until the whole body had been sent.
		return b, &s3Error{Status: http.StatusLengthRequired, Code: "MissingContentLength", Message: "send a Content-Length: the upstream needs to know the body's length"}
	}
	return b, nil
}

// hasChecksumHeader reports whether h carries a Content-MD5 or an x-amz-checksum-* value.
func hasChecksumHeader(h http.Header) bool {
	if h.Get("Content-Md5") != "" {
		return true
	}
	for k := range h {
		if hasPrefixFold(k, "X-Amz-Checksum-") {
			return true
		}
	}
	return false
}
