package signer

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Verifier checks SigV4 signatures made with keys looked up by access key id: signet's own
// client identities, which apps use in their normal S3 SDKs. It is safe for concurrent use.
// Each verification asks the secrets function again, so a changed secret takes effect on the
// next request; the v4 signers it keeps per key id and secret only spare it deriving the
// signing key on every request.
//
// The canonical request is never written here: the expected signature comes from
// aws-sdk-go-v2's v4 signer, run over a fresh request holding only what the client signed.
type Verifier struct {
	secrets func(accessKeyID string) (secret string, ok bool)
	now     func() time.Time
	maxSkew time.Duration
	signers v4Cache // keyed by secret too, so a changed secret gets a new signer
}

// VerifierOptions are the optional settings of a Verifier.
type VerifierOptions struct {
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// MaxSkew is the allowed difference between a header-signed request's X-Amz-Date and Now,
	// either way. Presigned URLs may also be dated this far in the future. Default: 15m (S3's).
	MaxSkew time.Duration
}

// maxPresignExpires is S3's limit on X-Amz-Expires: seven days.
const maxPresignExpires = 7 * 24 * 60 * 60

// NewVerifier returns a Verifier that finds secrets with secrets, which returns false for an
// unknown access key id. secrets is called once per Verify, concurrently.
func NewVerifier(secrets func(accessKeyID string) (secret string, ok bool), optFns ...func(*VerifierOptions)) *Verifier {
	o := VerifierOptions{Now: time.Now, MaxSkew: 15 * time.Minute}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = 15 * time.Minute
	}
	return &Verifier{secrets: secrets, now: o.Now, maxSkew: o.MaxSkew}
}

// Verified is what Verify proved about a request, and what is left to prove while its body
// streams.
type Verified struct {
	// AccessKeyID is the client identity that signed the request.
	AccessKeyID string
	// BodyCheck, when non-nil, must wrap the request body: the signature covers a hex
	// x-amz-content-sha256, and the returned reader hashes the payload as it streams. It
	// holds back the payload's last byte until its source has ended and the hash matches; a
	// mismatch is a *Error 400 XAmzContentSHA256Mismatch instead of that byte, so a
	// tampered body never completes an upload forwarded with a known Content-Length. It is
	// nil for UNSIGNED-PAYLOAD, STREAMING-* and bodiless requests.
	BodyCheck func(io.Reader) io.Reader
	// ChunkVerifier, for STREAMING-AWS4-HMAC-SHA256-PAYLOAD and its -TRAILER variant, sets
	// VerifyChunk and VerifyTrailer on the options of the body's ChunkedReader: a chain of
	// chunk signatures starting from the request's own (seed) signature, then the trailer
	// signature. Each call starts a new chain, so call it once per body. It is nil for every
	// other payload, STREAMING-UNSIGNED-PAYLOAD-TRAILER included: that body has no signatures,
	// only the checksums ChunkedReader checks itself.
	ChunkVerifier func(opts *ChunkedOptions)
}

// Error codes and statuses are the ones S3 answers with.
const (
	codeHeaderMalformed = "AuthorizationHeaderMalformed"
	codeQueryMalformed  = "AuthorizationQueryParametersError"
)

func accessDenied(format string, args ...any) *Error {
	return newError(http.StatusForbidden, "AccessDenied", nil, format, args...)
}

func signatureMismatch() *Error {
	return newError(http.StatusForbidden, "SignatureDoesNotMatch", nil,
		"the request signature we calculated does not match the signature you provided; check your key and signing method")
}

func sigV2Unsupported() *Error {
	return newError(http.StatusBadRequest, "InvalidRequest", nil,
		"signature version 2 is not supported for client identities; sign with AWS4-HMAC-SHA256 (signature version 4)")
}

const (
	sigV4Algorithm   = "AWS4-HMAC-SHA256"
	sigV4aAlgorithm  = "AWS4-ECDSA-P256-SHA256"
	amzDateFormat    = "20060102T150405Z"
	scopeDateFormat  = "20060102"
	scopeTerminator  = "aws4_request"
	serviceS3        = "s3"
	hostHeader       = "host"
	amzDateHeader    = "x-amz-date"
	contentLenHeader = "content-length"
)

// sigV4Auth is a request's SigV4 authentication, parsed from its Authorization header or its
// presigned query.
type sigV4Auth struct {
	presigned     bool
	accessKeyID   string
	scopeDate     string // yyyymmdd from the credential scope
	region        string
	signedHeaders []string // as sent: lowercase names separated by ';'
	signedSorted  []string // signedHeaders sorted, for lookups that stay O(log n) however many
	signature     string
	amzDate       string    // as sent
	date          time.Time // amzDate parsed
	expires       time.Duration
	query         url.Values // the whole query, decoded
	payloadHash   string     // what the canonical request ends with
}

// Verify checks r's SigV4 signature, made with an Authorization header or a presigned query,
// and returns the verified access key id and what is still to verify while the body streams.
// r must be a server request (header names canonical, Host in r.Host) that nothing has
// rewritten yet: call Verify before Strip. Verify does not read the body.
//
// Failures are *Error values with S3's status and code: 403 AccessDenied when there is
// no signature, 403 InvalidAccessKeyId, 403 SignatureDoesNotMatch, 403 RequestTimeTooSkewed,
// 403 AccessDenied for an expired presigned URL or an unsigned x-amz-* header, 400
// AuthorizationHeaderMalformed or AuthorizationQueryParametersError for malformed
// authentication, 400 InvalidRequest for SigV2 and SigV4a, 400 XAmzContentSHA256Mismatch for
// an empty body whose signed hash is not the empty string's.
//
// The credential scope may name any region (clients use us-east-1, auto, ...) but must name
// service s3.
func (v *Verifier) Verify(r *http.Request) (*Verified, error) {
	a, err := parseSigV4Auth(r)
	if err != nil {
		return nil, err
	}
	secret, ok := v.secrets(a.accessKeyID)
	if !ok {
		return nil, newError(http.StatusForbidden, "InvalidAccessKeyId", nil,
			"the access key id you provided does not exist in signet's client identities")
	}
	if err := v.checkTime(a); err != nil {
		return nil, err
	}
	if err := checkUnsignedAmzHeaders(r.Header, a); err != nil {
		return nil, err
	}
	want, err := expectedSignature(r, a, v.signers.get(aws.Credentials{AccessKeyID: a.accessKeyID, SecretAccessKey: secret}), secret)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(a.signature)) != 1 {
		return nil, signatureMismatch()
	}

	ver := &Verified{AccessKeyID: a.accessKeyID}
	switch a.payloadHash {
	case UnsignedPayload, StreamingUnsignedTrailer:
	case StreamingSigned, StreamingSignedTrailer:
		ver.ChunkVerifier = newChunkVerifier(secret, a)
	default: // a hex SHA-256, checked by parseSigV4Auth
		var sum [sha256.Size]byte
		_, _ = hex.Decode(sum[:], []byte(a.payloadHash))
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			if sum != sha256.Sum256(nil) {
				return nil, contentSHA256Mismatch()
			}
			break
		}
		ver.BodyCheck = func(src io.Reader) io.Reader { return &payloadHashReader{src: src, h: sha256.New(), want: sum} }
	}
	return ver, nil
}

func parseSigV4Auth(r *http.Request) (*sigV4Auth, error) {
	// A query Go cannot parse would be forwarded with parts the signature never covered.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, newError(http.StatusBadRequest, "InvalidArgument", nil, "the query string is not valid URL encoding")
	}
	authz := r.Header.Values("Authorization")
	presignV4 := hasAny(query, "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
	presignV2 := hasAny(query, "Signature", "AWSAccessKeyId")
	switch {
	case len(authz) > 0 && (presignV4 || presignV2):
		return nil, newError(http.StatusBadRequest, "InvalidArgument", nil,
			"only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
	case len(authz) > 1:
		return nil, newError(http.StatusBadRequest, codeHeaderMalformed, nil, "the authorization header is malformed; it was sent more than once")
	case len(authz) == 1:
		return parseAuthorization(r, query, authz[0])
	case presignV4:
		return parsePresigned(r, query)
	case presignV2:
		return nil, sigV2Unsupported()
	}
	return nil, accessDenied("anonymous requests are not allowed; sign requests with a signet client identity")
}

func hasAny(q url.Values, names ...string) bool {
	for _, n := range names {
		if _, ok := q[n]; ok {
			return true
		}
	}
	return false
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/s3/aws4_request,
// SignedHeaders=<a;b>, Signature=<hex>" and the headers that go with it.
func parseAuthorization(r *http.Request, query url.Values, authz string) (*sigV4Auth, error) {
	alg, rest, _ := strings.Cut(authz, " ")
	switch alg {
	case sigV4Algorithm:
	case "AWS":
		return nil, sigV2Unsupported()
	case sigV4aAlgorithm:
		return nil, newError(http.StatusBadRequest, "InvalidRequest", nil,
			"signature version 4a (%s) is not supported for client identities; sign with %s", sigV4aAlgorithm, sigV4Algorithm)
	default:
		return nil, newError(http.StatusBadRequest, "InvalidArgument", nil, "unsupported authorization type")
	}
	malformed := func(format string, args ...any) error {
		return newError(http.StatusBadRequest, codeHeaderMalformed, nil, "the authorization header is malformed; "+format, args...)
	}
	var credential, signedHeaders, signature string
	var seen int
	for field := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(field), "=")
		var dst *string
		var bit int
		switch {
		case !ok:
		case k == "Credential":
			dst, bit = &credential, 1
		case k == "SignedHeaders":
			dst, bit = &signedHeaders, 2
		case k == "Signature":
			dst, bit = &signature, 4
		}
		if dst == nil || seen&bit != 0 {
			return nil, malformed("it must hold Credential, SignedHeaders and Signature, once each")
		}
		*dst, seen = val, seen|bit
	}
	if seen != 7 {
		return nil, malformed("it must hold Credential, SignedHeaders and Signature, once each")
	}

	a := &sigV4Auth{query: query}
	if err := a.parseCommon(credential, signedHeaders, signature, malformed); err != nil {
		return nil, err
	}
	if !a.isSigned(amzDateHeader) {
		// S3 also takes a signed Date header; the SDK's signer always signs X-Amz-Date.
		return nil, accessDenied("aws authentication requires a valid, signed x-amz-date header")
	}
	dates := r.Header.Values("X-Amz-Date")
	if len(dates) != 1 {
		return nil, accessDenied("aws authentication requires a valid, signed x-amz-date header")
	}
	if err := a.parseDate(dates[0], func(string, ...any) error {
		return accessDenied("aws authentication requires a valid, signed x-amz-date header")
	}, malformed); err != nil {
		return nil, err
	}
	hashes := r.Header.Values("X-Amz-Content-Sha256")
	switch len(hashes) {
	case 0:
		return nil, newError(http.StatusBadRequest, "InvalidRequest", nil, "missing required header for this request: x-amz-content-sha256")
	case 1:
		a.payloadHash = hashes[0]
	default:
		return nil, newError(http.StatusBadRequest, "InvalidArgument", nil, "x-amz-content-sha256 was sent more than once")
	}
	if err := checkPayloadHash(a.payloadHash); err != nil {
		return nil, err
	}
	return a, nil
}

// parsePresigned parses the X-Amz-* parameters of a presigned URL.
func parsePresigned(r *http.Request, query url.Values) (*sigV4Auth, error) {
	malformed := func(format string, args ...any) error {
		return newError(http.StatusBadRequest, codeQueryMalformed, nil, format, args...)
	}
	get := func(name string) (string, bool) {
		vs := query[name]
		return strings.Join(vs, ""), len(vs) == 1
	}
	alg, ok1 := get("X-Amz-Algorithm")
	credential, ok2 := get("X-Amz-Credential")
	amzDate, ok3 := get("X-Amz-Date")
	expires, ok4 := get("X-Amz-Expires")
	signedHeaders, ok5 := get("X-Amz-SignedHeaders")
	signature, ok6 := get("X-Amz-Signature")
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return nil, malformed("query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters, once each")
	}
	if alg != sigV4Algorithm {
		if alg == sigV4aAlgorithm {
			return nil, newError(http.StatusBadRequest, "InvalidRequest", nil,
				"signature version 4a (%s) is not supported for client identities; sign with %s", sigV4aAlgorithm, sigV4Algorithm)
		}
		return nil, malformed("the X-Amz-Algorithm parameter only supports %s", sigV4Algorithm)
	}
	a := &sigV4Auth{presigned: true, query: query}
	if err := a.parseCommon(credential, signedHeaders, signature, malformed); err != nil {
		return nil, err
	}
	if err := a.parseDate(amzDate, malformed, malformed); err != nil {
		return nil, err
	}
	n, err := strconv.ParseUint(expires, 10, 32)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange), err == nil && n > maxPresignExpires:
		return nil, malformed("the X-Amz-Expires parameter must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than %d seconds", maxPresignExpires)
	case err != nil:
		return nil, malformed("the X-Amz-Expires parameter should be a number of seconds")
	}
	a.expires = time.Duration(n) * time.Second

	// Presigned URLs sign UNSIGNED-PAYLOAD unless the query says otherwise (as MinIO reads them).
	a.payloadHash = UnsignedPayload
	if vs, ok := query["X-Amz-Content-Sha256"]; ok {
		if len(vs) != 1 {
			return nil, newError(http.StatusBadRequest, "InvalidArgument", nil, "the X-Amz-Content-Sha256 parameter was sent more than once")
		}
		a.payloadHash = vs[0]
	}
	if err := checkPayloadHash(a.payloadHash); err != nil {
		return nil, err
	}
	return a, nil
}

// parseCommon parses the credential, the signed header list and the signature.
func (a *sigV4Auth) parseCommon(credential, signedHeaders, signature string, malformed func(string, ...any) error) error {
	// <access key id>/<yyyymmdd>/<region>/<service>/aws4_request, split from the right so an
	// access key id may hold a '/'.
	parts := strings.Split(credential, "/")
	if len(parts) < 5 {
		return malformed("the credential must be <access key id>/<yyyymmdd>/<region>/s3/aws4_request")
	}
	n := len(parts)
	a.accessKeyID = strings.Join(parts[:n-4], "/")
	a.scopeDate, a.region = parts[n-4], parts[n-3]
	switch {
	case a.accessKeyID == "":
		return malformed("the credential has no access key id")
	case parts[n-1] != scopeTerminator:
		return malformed("the credential must end in %s", scopeTerminator)
	case parts[n-2] != serviceS3:
		return malformed("incorrect service in the credential scope; this endpoint belongs to %q", serviceS3)
	}
	if _, err := time.Parse(scopeDateFormat, a.scopeDate); err != nil || len(a.scopeDate) != len(scopeDateFormat) {
		return malformed("the credential date must be yyyymmdd")
	}

	if signedHeaders == "" {
		return malformed("no signed headers")
	}
	a.signedHeaders = strings.Split(signedHeaders, ";")
	for _, h := range a.signedHeaders {
		if !isLowerToken(h) {
			return malformed("signed header names must be lowercase header names separated by ';'")
		}
	}
	a.signedSorted = slices.Sorted(slices.Values(a.signedHeaders))
	for i := 1; i < len(a.signedSorted); i++ {
		if a.signedSorted[i] == a.signedSorted[i-1] {
			return malformed("signed header %s is listed twice", a.signedSorted[i])
		}
	}
	if !a.isSigned(hostHeader) {
		return malformed("the host header must be signed")
	}

	if !isHexSignature([]byte(signature)) {
		return malformed("the signature must be 64 hex digits")
	}
	a.signature = signature
	return nil
}

func (a *sigV4Auth) isSigned(name string) bool {
	_, ok := slices.BinarySearch(a.signedSorted, name)
	return ok
}

// parseDate parses X-Amz-Date, which must be spelled exactly as the SDK's signer formats the
// time it is given, and match the credential's date.
func (a *sigV4Auth) parseDate(amzDate string, invalid, malformed func(string, ...any) error) error {
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil || t.Format(amzDateFormat) != amzDate {
		return invalid("the X-Amz-Date value must be in the ISO8601 long format yyyymmddThhmmssZ")
	}
	if t.Format(scopeDateFormat) != a.scopeDate {
		return malformed("invalid credential date: it is not the same as X-Amz-Date")
	}
	a.amzDate, a.date = amzDate, t
	return nil
}

// isLowerToken reports whether s is a non-empty HTTP header name in lowercase.
func isLowerToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// checkPayloadHash accepts the x-amz-content-sha256 values signet can act on.
func checkPayloadHash(h string) error {
	switch {
	case h == UnsignedPayload, isChunkedMode(h), isHexSignature([]byte(h)):
		return nil
	case strings.HasPrefix(h, "STREAMING-"):
		return newError(http.StatusNotImplemented, "NotImplemented", nil,
			"this STREAMING-* x-amz-content-sha256 is not supported; use STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] or STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	}
	return newError(http.StatusBadRequest, "InvalidArgument", nil,
		"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], STREAMING-UNSIGNED-PAYLOAD-TRAILER or a hex SHA-256")
}

func (v *Verifier) checkTime(a *sigV4Auth) error {
	now := v.now()
	if !a.presigned {
		if d := now.Sub(a.date); d > v.maxSkew || d < -v.maxSkew {
			return newError(http.StatusForbidden, "RequestTimeTooSkewed", nil,
				"the difference between the request time and the server's time is too large")
		}
		return nil
	}
	switch {
	case a.date.Sub(now) > v.maxSkew:
		return accessDenied("request is not valid yet")
	case now.After(a.date.Add(a.expires)):
		return accessDenied("request has expired")
	}
	return nil
}

// checkUnsignedAmzHeaders rejects x-amz-* headers the signature does not cover, as S3 does:
// signet re-signs everything it forwards, so upstream would otherwise take them as signed.
func checkUnsignedAmzHeaders(h http.Header, a *sigV4Auth) error {
	var unsigned []string
	for k := range h {
		if len(k) < len("x-amz-") || !strings.EqualFold(k[:len("x-amz-")], "x-amz-") {
			continue
		}
		if lk := strings.ToLower(k); !a.isSigned(lk) {
			unsigned = append(unsigned, lk)
		}
	}
	if len(unsigned) == 0 {
		return nil
	}
	slices.Sort(unsigned)
	return accessDenied("there were headers present in the request which were not signed: %s", strings.Join(unsigned, ", "))
}

// expectedSignature computes the signature r should carry with aws-sdk-go-v2's signer, over a
// fresh request that holds exactly what the client signed: method, the canonical path, the
// query but X-Amz-Signature, host and the signed headers.
func expectedSignature(r *http.Request, a *sigV4Auth, sdk *v4.Signer, secret string) (string, error) {
	// The canonical URI is rebuilt from the decoded path with AWS's rule, as S3 servers do
	// and as the proxy forwards it (see EscapePath).
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	u := &url.URL{Host: r.Host, Path: path, RawPath: EscapePath(path)}
	if u.EscapedPath() != u.RawPath {
		// url.URL ignores a RawPath it does not consider a spelling of Path; Opaque it takes as is.
		u = &url.URL{Host: r.Host, Opaque: "//" + r.Host + u.RawPath}
	}
	// No scheme: the SDK would drop a default port (":80" for http) from the host, and the
	// client signed the Host header as it sent it.
	q := a.query
	if a.presigned {
		q = make(url.Values, len(a.query))
		for k, vs := range a.query {
			if k != "X-Amz-Signature" {
				q[k] = vs
			}
		}
	}
	u.RawQuery = q.Encode()

	fresh := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: make(http.Header, len(a.signedHeaders))}
	for _, name := range a.signedHeaders {
		var vals []string
		switch name {
		case hostHeader:
			continue // the SDK signs fresh.Host
		case contentLenHeader:
			// The SDK signs content-length from ContentLength, and only when positive.
			n := r.ContentLength
			if v := r.Header.Values("Content-Length"); len(v) > 0 {
				var err error
				if n, err = strconv.ParseInt(v[0], 10, 64); err != nil || len(v) > 1 {
					n = -1
				}
			}
			if n == 0 {
				return "", newError(http.StatusForbidden, "SignatureDoesNotMatch", nil,
					"a signed content-length of 0 cannot be verified: sign content-length only for non-empty bodies")
			}
			if n < 0 {
				return "", missingSignedHeader(name)
			}
			fresh.ContentLength = n
			continue
		case "transfer-encoding":
			// Go's server moves it out of the header map.
			if vals = r.Header.Values(name); len(vals) == 0 && len(r.TransferEncoding) > 0 {
				vals = []string{strings.Join(r.TransferEncoding, ", ")}
			}
		default:
			vals = r.Header.Values(name)
		}
		if len(vals) == 0 {
			return "", missingSignedHeader(name)
		}
		if name == amzDateHeader {
			// The SDK writes X-Amz-Date itself under the canonical key: share it, on a copy,
			// as the SDK writes into the slice.
			fresh.Header["X-Amz-Date"] = slices.Clone(vals)
			continue
		}
		// A lowercase key: the SDK's list of headers it never signs (User-Agent, Expect,
		// ...) matches canonical keys only, and some clients sign those headers.
		fresh.Header[name] = vals
	}

	creds := aws.Credentials{AccessKeyID: a.accessKeyID, SecretAccessKey: secret}
	if a.presigned {
		signed, _, err := sdk.PresignHTTP(r.Context(), creds, fresh, a.payloadHash, serviceS3, a.region, a.date,
			func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true })
		if err != nil {
			return "", fmt.Errorf("presign with the client's secret: %w", err)
		}
		i := strings.LastIndex(signed, "&X-Amz-Signature=")
		if i < 0 {
			return "", errors.New("presign with the client's secret: no X-Amz-Signature in the signed url")
		}
		return signed[i+len("&X-Amz-Signature="):], nil
	}
	if err := sdk.SignHTTP(r.Context(), creds, fresh, a.payloadHash, serviceS3, a.region, a.date); err != nil {
		return "", fmt.Errorf("sign with the client's secret: %w", err)
	}
	_, sig, ok := strings.Cut(fresh.Header.Get("Authorization"), "Signature=")
	if !ok {
		return "", errors.New("sign with the client's secret: no signature in the authorization header")
	}
	return sig, nil
}

func missingSignedHeader(name string) *Error {
	return accessDenied("signed header %s is missing from the request", name)
}

func contentSHA256Mismatch() *Error {
	return newError(http.StatusBadRequest, "XAmzContentSHA256Mismatch", nil,
		"the provided x-amz-content-sha256 header does not match what was computed")
}

// deriveSigningKey derives SigV4's signing key for s3. It is written out here because chunk
// and trailer signatures need the key itself, and the SDK's deriver is internal
// (aws/signer/internal/v4); request signatures still come from the SDK.
func deriveSigningKey(secret, scopeDate, region string) []byte {
	k := hmacSum([]byte("AWS4"+secret), scopeDate)
	k = hmacSum(k, region)
	k = hmacSum(k, serviceS3)
	return hmacSum(k, scopeTerminator)
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// emptySHA256 is the hex SHA-256 of no bytes, a fixed line of the chunk string to sign.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// newChunkVerifier returns Verified.ChunkVerifier for a request whose seed signature verified.
// It keeps the derived key, not the secret.
func newChunkVerifier(secret string, a *sigV4Auth) func(*ChunkedOptions) {
	key := deriveSigningKey(secret, a.scopeDate, a.region)
	prefix := a.amzDate + "\n" + a.scopeDate + "/" + a.region + "/" + serviceS3 + "/" + scopeTerminator + "\n"
	seed := a.signature
	return func(opts *ChunkedOptions) {
		c := &chunkSignatureChain{mac: hmac.New(sha256.New, key), prefix: prefix, prev: seed}
		opts.VerifyChunk = c.verifyChunk
		opts.VerifyTrailer = c.verifyTrailer
	}
}

// chunkSignatureChain checks the signatures of an aws-chunked body in order: each signs the
// one before it, the first the request's seed signature.
type chunkSignatureChain struct {
	mac    hash.Hash // HMAC with the signing key
	prefix string    // "<amz date>\n<scope>\n"
	prev   string
	buf    [2 * sha256.Size]byte
}

// verifyChunk checks "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<prev>\n<sha256("")>\n<sha256(data)>".
func (c *chunkSignatureChain) verifyChunk(signature string, chunkSHA256 []byte) error {
	c.mac.Reset()
	io.WriteString(c.mac, "AWS4-HMAC-SHA256-PAYLOAD\n")
	io.WriteString(c.mac, c.prefix)
	io.WriteString(c.mac, c.prev)
	io.WriteString(c.mac, "\n"+emptySHA256+"\n")
	c.mac.Write(hex.AppendEncode(c.buf[:0], chunkSHA256))
	return c.check(signature, "chunk")
}

// verifyTrailer checks "AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n<prev>\n<sha256(trailer)>",
// trailer being what ChunkedReader passes: each trailer line as "name:value\n".
func (c *chunkSignatureChain) verifyTrailer(signature string, trailer []byte) error {
	sum := sha256.Sum256(trailer)
	c.mac.Reset()
	io.WriteString(c.mac, "AWS4-HMAC-SHA256-TRAILER\n")
	io.WriteString(c.mac, c.prefix)
	io.WriteString(c.mac, c.prev)
	io.WriteString(c.mac, "\n")
	c.mac.Write(hex.AppendEncode(c.buf[:0], sum[:]))
	return c.check(signature, "trailer")
}

func (c *chunkSignatureChain) check(signature, what string) error {
	var sum [sha256.Size]byte
	want := hex.AppendEncode(c.buf[:0], c.mac.Sum(sum[:0]))
	if subtle.ConstantTimeCompare(want, []byte(signature)) != 1 {
		return fmt.Errorf("%s signature does not match the chain from the request signature", what)
	}
	c.prev = signature
	return nil
}

// payloadHashReader is Verified.BodyCheck's reader: it hashes the payload as it passes and
// keeps its newest byte back until the source has ended and the hash matches.
type payloadHashReader struct {
	src     io.Reader
	h       hash.Hash
	want    [sha256.Size]byte
	held    byte
	hasHeld bool
	one     [1]byte // room to read into when the caller's buffer only fits the held byte
	eof     bool    // src has ended
	err     error   // sticky
}

func (r *payloadHashReader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		if r.eof {
			return r.finish(p)
		}
		// Read behind the held byte, so that it goes out first.
		buf, off := p, 0
		if r.hasHeld {
			if len(p) == 1 {
				buf = r.one[:]
			} else {
				off = 1
			}
		}
		m, err := r.src.Read(buf[off:])
		switch {
		case err == io.EOF:
			r.eof = true
		case err != nil:
			r.err = bodyReadError(err, "the payload")
		}
		if m == 0 {
			if r.eof || r.err != nil {
				continue
			}
			return 0, nil
		}
		got := buf[off : off+m]
		r.h.Write(got)
		var n int
		switch {
		case !r.hasHeld:
			n = m - 1
			r.held, r.hasHeld = got[n], true
		case len(p) == 1:
			p[0], r.held = r.held, got[0]
			n = 1
		default:
			p[0] = r.held
			r.held = got[m-1]
			n = m
		}
		if n > 0 {
			return n, nil
		}
	}
}

// finish checks the hash at the end of the source and lets the held byte go if it matches.
func (r *payloadHashReader) finish(p []byte) (int, error) {
	var sum [sha256.Size]byte
	if subtle.ConstantTimeCompare(r.h.Sum(sum[:0]), r.want[:]) != 1 {
		r.err = contentSHA256Mismatch()
		return 0, r.err
	}
	r.err = io.EOF
	if r.hasHeld {
		p[0], r.hasHeld = r.held, false
		return 1, io.EOF
	}
	return 0, io.EOF
}
