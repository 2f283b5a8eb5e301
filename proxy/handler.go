package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/signer"
)

// Options are the Handler's optional hooks. The zero value of each field is a working
// default.
type Options struct {
	// Transport carries signed requests upstream. nil: each account's own, built by
	// NewTransport with the account's timeouts.
	Transport http.RoundTripper
	// Logger receives one line per request and upstream failures. nil: slog.Default().
	Logger *slog.Logger
	// Now is the signing clock. nil: time.Now.
	Now func() time.Time
	// Metrics receives request metrics. nil: none.
	Metrics *Metrics
	// MaxConcurrent caps the requests served at once; beyond it clients get 503 SlowDown
	// at once rather than queueing. 0: no cap.
	MaxConcurrent int
}

// Handler is signet's S3 endpoint: an http.Handler that routes, re-signs and forwards.
type Handler struct {
	opts   Options
	table  atomic.Pointer[Table]
	rp     *httputil.ReverseProxy
	signer *signer.Signer

	sem      *semaphore.Weighted // nil: no cap
	pool     bufferPool
	idPrefix string
	idSeq    atomic.Uint64
	draining atomic.Bool    // see Drain
	active   sync.WaitGroup // requests in ServeHTTP, for Wait
}

// New returns a Handler serving t.
func New(t *Table, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	h := &Handler{opts: opts, signer: signer.NewSigner(), idPrefix: strings.ToUpper(hex.EncodeToString(b[:])),
		pool: bufferPool{free: make(chan []byte, 64)}}
	if opts.MaxConcurrent > 0 {
		h.sem = semaphore.NewWeighted(int64(opts.MaxConcurrent))
	}
	h.table.Store(t)
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		ModifyResponse: h.modifyResponse,
		Transport:      signingTransport{h},
		ErrorHandler:   h.errorHandler,
		BufferPool:     &h.pool,
		// Log through slog, not the standard logger; ReverseProxy logs copy errors here.
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return h
}

// Swap installs a new route table for requests that start from now on; requests in flight
// finish with the table they started with. It returns the old table, for the caller to
// Retire.
func (h *Handler) Swap(t *Table) *Table { return h.table.Swap(t) }

// Table returns the route table new requests use.
func (h *Handler) Table() *Table { return h.table.Load() }

// acquireTable returns the current table, counted as in use until release. The second
// load catches a Swap between the first and the count, after which the old table may
// already be closing.
func (h *Handler) acquireTable() *Table {
	for {
		t := h.table.Load()
		t.acquire()
		if h.table.Load() == t {
			return t
		}
		t.release()
	}
}

// state is what ServeHTTP decided about a request, carried to Rewrite, the transport and
// ErrorHandler in the request's context.
type state struct {
	id         string
	req        s3Request
	route      *Route
	upBucket   string
	copySource string     // rewritten x-amz-copy-source, when the request has one
	query      url.Values // the parsed query; nil when empty
	// chunked is set for aws-chunked bodies that signet decodes; payloadHash is what the
	// upstream request is signed with.
	chunked     *signer.ChunkedOptions
	payloadHash string
	body        *countingBody
	// client and verified are the app identity that signed the request, when clients
	// are configured.
	client   *client
	verified *signer.Verified
	retried  bool // sent again after the upstream refused the credentials
	err      *s3Error
	// upstreamCode is the S3 error code of the upstream's error answer, for the log.
	upstreamCode string
	// upload resets the upstream connection of a request whose body fails; nil without a body.
	upload *uploadGuard
}

type stateKey struct{}

func (st *state) bodyErr() error {
	if st.body == nil {
		return nil
	}
	return st.body.readErr()
}

func stateFrom(ctx context.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	return st
}

func (h *Handler) newID() string {
	const hexDigits = "0123456789ABCDEF"
	var b [16]byte
	copy(b[:8], h.idPrefix)
	for i, n := 15, uint32(h.idSeq.Add(1)); i >= 8; i, n = i-1, n>>4 {
		b[i] = hexDigits[n&15]
	}
	return string(b[:])
}

// Wait waits until no request is in ServeHTTP, or ctx is done. A stopping server calls
// it after closing its connections: each request still uploading then fails its body
// read, which resets its upstream connection before the request returns, so exiting
// after Wait cuts no upload in a way an upstream could take for its end.
func (h *Handler) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { // ends when the last request does
		h.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("requests still running: %w", ctx.Err())
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.active.Add(1)
	defer h.active.Done()
	start := time.Now()
	st := &state{id: h.newID()}
	lw := &logWriter{ResponseWriter: w}
	lw.Header().Set("X-Signet-Request-Id", st.id)
	// Work on a copy: the server judges the connection by its own request's Body. Given a
	// wrapped body, it would read a refused upload after the handler returns, answering an
	// Expect: 100-continue with 100 Continue and waiting for the body instead of answering
	// at once (net/http finishRequest, "discard").
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	if r.Body != nil && r.Body != http.NoBody {
		st.body = &countingBody{ReadCloser: r.Body}
		r.Body = st.body
	}
	if m := h.opts.Metrics; m != nil {
		m.inFlight.Inc()
		defer m.inFlight.Dec()
	}
	defer func() {
		var in int64
		if st.body != nil {
			in = st.body.n.Load()
		}
		d := time.Since(start)
		h.logRequest(r, st, lw, in, d)
		h.opts.Metrics.observe(r.Method, st, lw.statusOr200(), in, lw.n, d)
	}()

	if h.sem != nil {
		if !h.sem.TryAcquire(1) {
			st.err = &s3Error{status: http.StatusServiceUnavailable, code: "SlowDown", msg: fmt.Sprintf("signet is serving its maximum of %d requests at once; retry shortly", h.opts.MaxConcurrent)}
			writeError(lw, r, st.err, st.id)
			return
		}
		defer h.sem.Release(1)
	}
	t := h.acquireTable()
	defer t.release()
	if err := h.prepare(r, t, st); err != nil {
		st.err = err
		writeError(lw, r, err, st.id)
		return
	}
	if v := st.verified; v != nil && v.BodyCheck != nil && st.body != nil {
		// r.Body, not st.body: a scope check may have read a DeleteObjects body and put
		// it back.
		r.Body = decodedBody{v.BodyCheck(r.Body), r.Body}
	}
	if st.req.endpoint == presignPath {
		h.servePresign(lw, r, st)
		return
	}
	if st.req.bucket == "" {
		h.listBuckets(lw, r, t, st)
		return
	}
	if st.chunked != nil {
		if v := st.verified; v != nil && v.ChunkVerifier != nil {
			v.ChunkVerifier(st.chunked)
		}
		if err := decodeChunked(r, st); err != nil {
			st.err = err
			writeError(lw, r, err, st.id)
			return
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		st.upload = &uploadGuard{}
		r.Body = guardedBody{r.Body, st.upload}
		// When the client's connection fails, the server cancels the request's context from
		// within the body read, and the transport would close the upstream connection (over
		// TLS with a clean close_notify) before the guard could reset it. So the upstream
		// request gets a context of its own, cancelled only once the guard has acted.
		in := r.Context()
		ctx, cancel := context.WithCancelCause(context.WithoutCancel(in))
		defer cancel(nil)
		stop := context.AfterFunc(in, func() {
			st.upload.abort()
			cancel(context.Cause(in))
		})
		defer stop()
		r = r.WithContext(ctx)
	}
	h.rp.ServeHTTP(lw, r)
}

// prepare parses and routes r, filling st, or says why signet refuses it.
func (h *Handler) prepare(r *http.Request, t *Table, st *state) *s3Error {
	if !s3Method(r.Method) {
		return &s3Error{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed", msg: "signet forwards only GET, HEAD, PUT, POST, DELETE and OPTIONS"}
	}
	req, err := parseRequest(r, t.suffixes)
	if err != nil {
		return err
	}
	st.req = req
	if t.clients != nil {
		// Authenticate before anything else is revealed, even whether a bucket is routed.
		if st.client, st.verified, err = t.clients.authenticate(r); err != nil {
			return err
		}
	}
	if r.URL.RawQuery != "" {
		// Parsed once, here: Go's URL.Query drops what it cannot parse, which would
		// forward a request other than the one the client sent.
		q, qerr := url.ParseQuery(r.URL.RawQuery)
		if qerr != nil {
			return &s3Error{status: http.StatusBadRequest, code: "InvalidArgument", msg: "the query string cannot be parsed: " + qerr.Error()}
		}
		st.query = q
	}
	if req.endpoint != "" {
		if r.Method != http.MethodPost {
			return &s3Error{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed", msg: "only POST is allowed on " + req.endpoint}
		}
		return nil // the endpoint authorizes what it is asked for
	}
	if st.client != nil && req.bucket != "" {
		if err := st.client.authorize(r, req, st.query); err != nil {
			return err
		}
	}
	if req.bucket == "" {
		if r.Method != http.MethodGet {
			return &s3Error{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed", msg: "only GET (ListBuckets) is allowed on /"}
		}
		return nil
	}
	st.route = t.Lookup(req.bucket)
	if st.route == nil {
		return &s3Error{status: http.StatusNotFound, code: "NoSuchBucket", msg: "bucket " + quote(req.bucket) + " is not configured in signet"}
	}
	st.upBucket = st.route.UpstreamBucket(req.bucket)
	if st.route.ReadOnly && !isRead(r.Method) {
		return &s3Error{status: http.StatusForbidden, code: "AccessDenied", msg: "bucket " + quote(req.bucket) + " is read-only in signet"}
	}
	if err := st.route.scope.check(r, req, st.query, "bucket "+quote(req.bucket)); err != nil {
		return err
	}
	if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
		cs, err := h.copySource(t, st.client, st.route, req.bucket, src)
		if err != nil {
			return err
		}
		st.copySource = cs
	}
	return h.prepareBody(r, st)
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

// prepareBody decides how the body goes upstream: as it came, or, for aws-chunked bodies,
// decoded with a Content-Length (R2 refuses chunk-signed uploads and bodies without one).
func (h *Handler) prepareBody(r *http.Request, st *state) *s3Error {
	st.payloadHash = signer.UnsignedPayload
	opts, chunked, err := signer.ChunkedOptionsFromHeader(r.Header)
	if err != nil {
		if be, ok := errors.AsType[*signer.BodyError](err); ok {
			return &s3Error{status: be.Status, code: be.Code, msg: be.Message}
		}
		return &s3Error{status: http.StatusBadRequest, code: "InvalidArgument", msg: err.Error()}
	}
	switch {
	case chunked && opts.Mode == signer.StreamingUnsignedTrailer && r.ContentLength >= 0 && st.route.Upstream.ChunkedPassthrough:
		// The upstream takes unsigned-trailer bodies itself: only the headers are re-signed.
		st.payloadHash = signer.StreamingUnsignedTrailer
	case chunked && opts.DecodedLength < 0:
		return &s3Error{status: http.StatusLengthRequired, code: "MissingContentLength", msg: "an aws-chunked body needs x-amz-decoded-content-length: the upstream needs to know the body's length"}
	case chunked:
		st.chunked = &opts
	case r.ContentLength < 0:
		// Transfer-Encoding: chunked with no length: R2 refuses it (411), and forwarding
		// it as it came would hide that until the whole body had been sent.
		return &s3Error{status: http.StatusLengthRequired, code: "MissingContentLength", msg: "send a Content-Length: the upstream needs to know the body's length"}
	}
	return nil
}

// decodeChunked replaces r's aws-chunked body with its decoded payload, announced with
// its decoded length. The decoder holds back the payload's last byte until the framing,
// trailer and checksum are verified, so a bad body never completes an upload upstream.
func decodeChunked(r *http.Request, st *state) *s3Error {
	dec := signer.NewChunkedReader(r.Body, *st.chunked)
	signer.StripChunkedHeaders(r.Header)
	r.TransferEncoding = nil
	r.ContentLength = st.chunked.DecodedLength
	if r.ContentLength == 0 {
		// ReverseProxy sends no body for a zero length and so would never read this one:
		// check its framing here. It is empty, so this reads only the framing.
		if _, err := io.Copy(io.Discard, dec); err != nil {
			if be, ok := errors.AsType[*signer.BodyError](err); ok {
				return &s3Error{status: be.Status, code: be.Code, msg: be.Message}
			}
			return &s3Error{status: http.StatusBadRequest, code: "IncompleteBody", msg: err.Error()}
		}
		r.Body = http.NoBody
		return nil
	}
	r.Body = decodedBody{dec, r.Body}
	return nil
}

// decodedBody reads the decoder and closes the client's body.
type decodedBody struct {
	io.Reader
	io.Closer
}

// copySource rewrites an x-amz-copy-source value ("[/]bucket/key[?versionId=..]", key
// URL-encoded) to the upstream bucket name, checking that the source is routed to the
// same upstream as the destination (one signature cannot span two accounts) and that the
// route and the client c (nil without clients) may read it.
func (h *Handler) copySource(t *Table, c *client, dst *Route, dstBucket, src string) (string, *s3Error) {
	rest := strings.TrimPrefix(src, "/")
	bucket, key, ok := strings.Cut(rest, "/")
	if !ok || key == "" {
		return "", &s3Error{status: http.StatusBadRequest, code: "InvalidArgument", msg: "x-amz-copy-source must be bucket/key"}
	}
	if b, err := url.PathUnescape(bucket); err == nil {
		bucket = b
	}
	if err := config.CheckBucketName(bucket); err != nil {
		return "", &s3Error{status: http.StatusBadRequest, code: "InvalidArgument", msg: "x-amz-copy-source: " + err.Error()}
	}
	r := t.Lookup(bucket)
	if r == nil {
		return "", &s3Error{status: http.StatusNotFound, code: "NoSuchBucket", msg: "copy source bucket " + quote(bucket) + " is not configured in signet"}
	}
	if r.Upstream != dst.Upstream {
		return "", &s3Error{status: http.StatusBadRequest, code: "InvalidRequest", msg: fmt.Sprintf(
			"copy source bucket %q is in account %s jurisdiction %s but the destination is in account %s jurisdiction %s: "+
				"an upstream cannot copy across accounts or jurisdictions; download and upload instead",
			bucket, r.Upstream.Account, r.Upstream.Jurisdiction, dst.Upstream.Account, dst.Upstream.Jurisdiction)}
	}
	if !r.scope.allowsKey(copySourceKey(key)) {
		return "", &s3Error{status: http.StatusForbidden, code: "AccessDenied", msg: "the copy source key is outside the prefixes bucket " + quote(bucket) + " is limited to"}
	}
	// A copy reads its source: the client must be allowed to read it itself.
	if c != nil && !c.mayUse(bucket) {
		return "", &s3Error{status: http.StatusForbidden, code: "AccessDenied", msg: "client " + quote(c.name) + " may not use copy source bucket " + quote(bucket)}
	}
	if c != nil && !c.scope.allowsKey(copySourceKey(key)) {
		return "", &s3Error{status: http.StatusForbidden, code: "AccessDenied", msg: "the copy source key is outside the prefixes client " + quote(c.name) + " is limited to"}
	}
	srcBucket := r.UpstreamBucket(bucket)
	if dst.Upstream.BucketScoped && srcBucket != dst.UpstreamBucket(dstBucket) {
		return "", &s3Error{status: http.StatusBadRequest, code: "InvalidRequest", msg: fmt.Sprintf(
			"copy from bucket %q to bucket %q: account %s signs with temporary credentials that each cover one bucket, "+
				"so no single signature can copy between two buckets; download and upload instead, or give the account static credentials",
			bucket, dstBucket, dst.Upstream.Account)}
	}
	return "/" + srcBucket + "/" + key, nil
}

// rewrite builds the upstream request: the route's endpoint, the upstream bucket, the key
// escaped as S3 servers rebuild it, and the client's headers and query minus its
// authentication. The transport signs it.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.In.Context())
	out := pr.Out
	up := st.route.Upstream

	p := "/" + st.upBucket
	if st.req.key != "" {
		p += "/" + st.req.key
	}
	out.URL.Scheme, out.URL.Host = up.URL.Scheme, up.URL.Host
	out.URL.Path, out.URL.RawPath = p, signer.EscapePath(p)
	out.Host = ""

	// st.query is this request's own: Strip may change it, and nothing reads it after.
	signer.Strip(out.Header, st.query)
	if st.query != nil {
		out.URL.RawQuery = st.query.Encode()
	}
	delete(out.Header, "Content-Length") // sent from out.ContentLength
	if up.DropExpect {
		delete(out.Header, "Expect")
	}
	if st.copySource != "" {
		out.Header.Set("X-Amz-Copy-Source", st.copySource)
	}
}

// errCredentials marks a failure to obtain credentials (as opposed to reaching upstream).
var errCredentials = errors.New("credentials")

// signingTransport signs each upstream request just before it is sent.
type signingTransport struct{ h *Handler }

// RoundTrip signs req in place: req is ReverseProxy's own outbound clone, made for this
// one round trip, so nothing else sees the change.
//
// When the upstream says the credentials expired or are unknown, the provider is told to
// drop them (creds.Invalidator) and a request with no body is sent once more with new
// ones; a request with a body cannot be replayed, and its error goes back to the client.
func (t signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := stateFrom(req.Context())
	resp, err := t.send(req, st)
	if err != nil {
		return nil, err
	}
	inv, ok := st.route.Upstream.Creds.(creds.Invalidator)
	if !ok || !refusedCredentials(resp) {
		return resp, nil
	}
	inv.Invalidate(st.route.credKey(st.req.bucket))
	if req.Body != nil && req.Body != http.NoBody {
		return resp, nil
	}
	resp.Body.Close()
	st.retried = true
	return t.send(req.Clone(req.Context()), st)
}

func (t signingTransport) send(req *http.Request, st *state) (*http.Response, error) {
	ctx := req.Context()
	up := st.route.Upstream
	c, err := up.Creds.Retrieve(ctx, st.route.credKey(st.req.bucket))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCredentials, err)
	}
	if err := t.h.signer.Sign(ctx, req, c, up.Region, st.payloadHash, t.h.opts.Now()); err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	if st.upload != nil {
		req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: st.upload.gotConn}))
	}
	return t.h.roundTrip(up, req, st)
}

// maxErrorPeek bounds how much of an upstream error body is read to find its code.
const maxErrorPeek = 4 << 10

// refusedCredentials reports whether resp rejects the credentials themselves (expired,
// unknown or revoked), as opposed to the request. It reads at most the start of an error
// body and puts it back.
func refusedCredentials(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized: // R2's answer to expired temporary credentials
		return true
	case http.StatusBadRequest, http.StatusForbidden:
	default:
		return false
	}
	buf := make([]byte, maxErrorPeek)
	n, err := io.ReadFull(resp.Body, buf)
	buf = buf[:n]
	rest := resp.Body
	if err != nil {
		rest = http.NoBody
	}
	resp.Body = peekedBody{io.MultiReader(bytes.NewReader(buf), rest), resp.Body}
	m := errorCodeRE.FindSubmatch(buf)
	if m == nil {
		return false
	}
	switch string(m[1]) {
	case "ExpiredToken", "InvalidAccessKeyId", "InvalidToken", "InvalidTokenId", "TokenRefreshRequired", "ExpiredRequest":
		return true
	}
	return false
}

var (
	errorCodeRE    = regexp.MustCompile(`<Code>\s*([A-Za-z]+)\s*</Code>`)
	errorMessageRE = regexp.MustCompile(`<Message>([^<]{0,300})</Message>`)
)

// peekedBody is a response body whose start was read and put back.
type peekedBody struct {
	io.Reader
	io.Closer
}

// modifyResponse runs on each upstream response before it is copied to the client.
func (h *Handler) modifyResponse(resp *http.Response) error {
	if st := stateFrom(resp.Request.Context()); st != nil && st.route != nil && st.route.Rename != "" && namesBucket(resp, st) {
		renameResponse(resp, st.upBucket, st.req.bucket)
	}
	return nil
}

// namesBucket reports whether resp is an S3 answer that may name the bucket: an error, a
// bucket-level answer (listings), or a multipart upload's. Never an object's own bytes,
// which may well be XML.
func namesBucket(resp *http.Response, st *state) bool {
	switch {
	case resp.StatusCode >= 300, st.req.key == "":
		return true
	case resp.Request.Method == http.MethodPost, resp.Request.Method == http.MethodGet && st.query.Has("uploadId"):
		return st.query.Has("uploads") || st.query.Has("uploadId") // create, complete, ListParts
	}
	return false
}

func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if bodyErr := st.bodyErr(); bodyErr != nil {
		// The transport reports the failed body read as its own error.
		err = &signer.BodyError{Status: http.StatusBadRequest, Code: "IncompleteBody",
			Message: "the request body ended before its Content-Length", Err: bodyErr}
	}
	e := statusError(r, st, err)
	if st != nil {
		st.err = e
	}
	if e.status == StatusClientClosedRequest {
		if lw, ok := w.(*logWriter); ok {
			lw.status = e.status
		}
		return
	}
	writeError(w, r, e, st.id)
}

func (h *Handler) logRequest(r *http.Request, st *state, lw *logWriter, in int64, d time.Duration) {
	status := lw.statusOr200()
	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.String("id", st.id),
		slog.String("method", r.Method),
		slog.String("bucket", st.req.bucket),
		slog.Int("key_len", len(st.req.key)),
		slog.Int("status", status),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", lw.n),
		slog.Duration("duration", d),
	}
	if st.route != nil {
		attrs = append(attrs, slog.String("account", st.route.Upstream.Account))
	}
	if st.retried {
		attrs = append(attrs, slog.Bool("retried_after_credentials_refused", true)) // with new ones unless minted moments ago
	}
	if st.client != nil {
		attrs = append(attrs, slog.String("client", st.client.name))
	}
	if st.upstreamCode != "" {
		attrs = append(attrs, slog.String("upstream_error", st.upstreamCode))
		if hint := upstreamHint(st.upstreamCode); hint != "" {
			attrs, level = append(attrs, slog.String("hint", hint)), slog.LevelWarn
		}
	}
	if st.err != nil {
		attrs = append(attrs, slog.String("error", st.err.code), slog.String("message", st.err.msg))
		if st.err.status >= 500 && st.err.status != StatusClientClosedRequest {
			level = slog.LevelWarn
		}
	}
	h.opts.Logger.LogAttrs(context.Background(), level, "request", attrs...)
}

// logWriter records the status and body size written.
type logWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *logWriter) WriteHeader(code int) {
	if code >= 200 && w.status == 0 {
		w.status = code
		// ReverseProxy copied the upstream's headers with Header.Add, which canonicalizes
		// the lowercase x-amz-meta-* names S3 sends.
		signer.LowercaseMeta(w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *logWriter) statusOr200() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach Flush and deadlines (ReverseProxy uses it).
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the request body bytes read and keeps the first read error, so that
// a body the client broke off is not blamed on the upstream. Both are atomic: the transport
// may still read the body (to check for bytes beyond Content-Length) after ReverseProxy
// has returned and the request is being logged.
type countingBody struct {
	io.ReadCloser
	n   atomic.Int64
	err atomic.Pointer[error]
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

// readErr is the first error reading the body, other than io.EOF.
func (b *countingBody) readErr() error {
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}

// bufferPool lends ReverseProxy its response copy buffers (caddy's streamingBufPool): a
// bounded free list, which unlike a sync.Pool of slices allocates nothing on Put.
type bufferPool struct{ free chan []byte }

// copyBufferSize: larger than io.Copy's 32 KiB, which measurably slows large GETs.
const copyBufferSize = 128 << 10

func (b *bufferPool) Get() []byte {
	select {
	case buf := <-b.free:
		return buf
	default:
		return make([]byte, copyBufferSize)
	}
}

func (b *bufferPool) Put(buf []byte) {
	select {
	case b.free <- buf:
	default: // enough kept; let this one go
	}
}
