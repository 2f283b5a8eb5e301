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
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

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
	// BodyIdleTimeout ends a transfer whose body moves no byte for this long, whichever
	// side stalled (see idle.go); a slow transfer that keeps moving is never cut. 0: none.
	BodyIdleTimeout time.Duration
}

// Handler is signet's S3 endpoint: an http.Handler that routes, re-signs and forwards.
type Handler struct {
	opts   Options
	table  atomic.Pointer[Table]
	rp     *httputil.ReverseProxy
	signer *signer.Signer

	sem      *semaphore.Weighted // nil: no cap
	deletes  *semaphore.Weighted // bytes of DeleteObjects bodies held for checking
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
	h.deletes = semaphore.NewWeighted(deleteBudget)
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

// exchange is one request on its way through the Handler: the plan decided for it, and
// what happened while forwarding it. ReverseProxy's hooks find it in the request's context.
type exchange struct {
	plan *plan
	outcome
	lw logWriter // the client's ResponseWriter, allocated with the exchange
}

// outcome is what happens while a request is forwarded: the only part of an exchange that
// changes after decide.
type outcome struct {
	in      *countingBody // the client's body as read; nil without one
	upload  *uploadGuard  // resets the upstream connection of a failed upload; nil without a body
	retried bool          // sent again after the upstream refused the credentials
	token   string        // the session token the request was signed with, to scrub from errors
	err     *s3Error
	// upstreamCode is the S3 error code of the upstream's error answer, for the log.
	upstreamCode string
	presign      *PresignRequest // what a presign request asked for, for the log
	// abandonBody: the answer closes the connection without reading the rest of the body.
	abandonBody bool
	// With a body idle timeout: cancel ends the upstream request, and uploadIdle watches
	// the upstream taking the body.
	cancel     context.CancelCauseFunc
	uploadIdle *watchdog
}

type exchangeKey struct{}

func (x *exchange) bodyErr() error {
	if x.in == nil {
		return nil
	}
	return x.in.readErr()
}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
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

// ServeHTTP implements http.Handler. A request is decided once (decide), then served:
// signet's own endpoint, ListBuckets, or forwarded through ReverseProxy, whose hooks read
// the plan.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.active.Add(1)
	defer h.active.Done()
	start := time.Now()
	id := h.newID()
	x := &exchange{lw: logWriter{ResponseWriter: w}}
	lw := &x.lw
	if idle := h.opts.BodyIdleTimeout; idle > 0 {
		lw.rc, lw.idle = http.NewResponseController(w), idle
		defer lw.clearDeadlines(x)
	}
	lw.Header()["X-Signet-Request-Id"] = []string{id} // canonical already
	browserSafety(lw.Header())
	// Work on a copy: r is never changed. The server judges the connection by its own
	// request's Body: given a wrapped body, it would read a refused upload after the handler
	// returns, answering an Expect: 100-continue with 100 Continue and waiting for the body
	// instead of answering at once (net/http finishRequest, "discard").
	in := r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	if r.Body != nil && r.Body != http.NoBody {
		body := r.Body
		if lw.rc != nil {
			body = &deadlineBody{ReadCloser: body, rc: lw.rc, d: deadline{idle: lw.idle}}
		}
		x.in = &countingBody{ReadCloser: body}
		in.Body = x.in
	}
	if m := h.opts.Metrics; m != nil {
		m.inFlight.Inc()
		defer m.inFlight.Dec()
	}
	defer func() {
		d := time.Since(start)
		if x.plan == nil { // ended before anything was decided
			x.plan = &plan{id: id, method: r.Method}
		}
		h.logRequest(x, lw, d)
		h.opts.Metrics.observe(x, lw.statusOr200(), x.in.count(), lw.n, d)
	}()
	if len(r.TransferEncoding) > 0 && r.ProtoMajor == 1 {
		// Go's server drops a Content-Length sent with Transfer-Encoding before the handler
		// sees it, so the two cannot be told apart from chunked alone. RFC 9112 wants the
		// connection closed after answering such a request (a front proxy that went by the
		// Content-Length is out of step), and closing after any chunked upload costs one
		// dial per upload.
		lw.Header().Set("Connection", "close")
	}
	fail := func(e *s3Error) {
		x.err = e
		closeIfUnread(lw, in, x)
		writeError(lw, in, e, id)
		abandonBody(lw, x)
	}

	if h.sem != nil {
		if !h.sem.TryAcquire(1) {
			fail(&s3Error{Status: http.StatusServiceUnavailable, Code: "SlowDown", Message: fmt.Sprintf("signet is serving its maximum of %d requests at once; retry shortly", h.opts.MaxConcurrent)})
			return
		}
		defer h.sem.Release(1)
	}
	t := h.acquireTable()
	defer t.release()
	p, err := h.decide(in, t, id)
	x.plan = p
	if p.origin != "" {
		corsHeaders(lw.Header(), p.origin)
	}
	if err != nil {
		fail(err)
		return
	}
	if p.preflight {
		servePreflight(lw, in)
		return
	}
	switch p.action {
	case actPresign:
		h.servePresign(lw, in, t, x)
	case actListBuckets:
		h.listBuckets(lw, in, t, x)
	default:
		if err := h.forward(lw, in, x); err != nil {
			fail(err)
		}
	}
}

// forward sends in upstream as x's plan says, with its body as planned.
func (h *Handler) forward(w http.ResponseWriter, in *http.Request, x *exchange) *s3Error {
	p := x.plan
	if lw, ok := w.(*logWriter); ok && in.Header.Get("Expect") != "" && !p.route.Upstream.DropExpect {
		// Only a request that expects 100 Continue can get a 1xx answer (see logWriter.own).
		lw.own = lw.Header().Clone()
	}
	if p.body.checked != nil {
		in.Body, in.ContentLength = io.NopCloser(bytes.NewReader(p.body.checked)), int64(len(p.body.checked))
	} else if in.Body != nil && in.Body != http.NoBody {
		var err error
		if in.Body, in.ContentLength, err = openBody(in, p); err != nil {
			return bodyS3Error(err, "InvalidArgument", "")
		}
		if p.body.chunked != nil {
			in.TransferEncoding = nil
			if in.ContentLength == 0 {
				// ReverseProxy sends no body for a zero length and so would never read
				// this one: check its framing here. It is empty: this reads only framing.
				if _, err := io.Copy(io.Discard, in.Body); err != nil {
					return bodyS3Error(err, "IncompleteBody", "")
				}
				in.Body = http.NoBody
			}
		}
	}
	ctx, cancel := context.WithCancelCause(in.Context())
	if in.Body != nil && in.Body != http.NoBody {
		x.upload = &uploadGuard{}
		in.Body = guardedBody{in.Body, x.upload}
		// When the client's connection fails, the server cancels the request's context from
		// within the body read, and the transport would close the upstream connection (over
		// TLS with a clean close_notify) before the guard could reset it. So the upstream
		// request gets a context of its own, cancelled only once the guard has acted.
		ctx, cancel = context.WithCancelCause(context.WithoutCancel(in.Context()))
		stop := context.AfterFunc(in.Context(), func() {
			x.upload.abort()
			cancel(context.Cause(in.Context()))
		})
		defer stop()
	}
	defer cancel(nil)
	if idle := h.opts.BodyIdleTimeout; idle > 0 {
		x.cancel = cancel
		if x.upload != nil {
			x.uploadIdle = newWatchdog(idle, idleCancel(x, cancel))
			defer x.uploadIdle.finish()
			in.Body = pacedUpload{in.Body, x.uploadIdle}
		}
	}
	h.rp.ServeHTTP(w, in.WithContext(ctx))
	return nil
}

// openBody returns in's body as it will be sent, and its length: verified against the
// client's signed payload hash, or aws-chunked decoded (and its chunk signatures checked),
// as the plan says. The decoder holds back the payload's last byte until the framing,
// trailer and checksum are verified, so a bad body never completes an upload upstream.
func openBody(in *http.Request, p *plan) (io.ReadCloser, int64, error) {
	var rd io.Reader = in.Body
	if v := p.verified; v != nil && v.BodyCheck != nil {
		rd = v.BodyCheck(rd)
	}
	n := in.ContentLength
	if c := p.body.chunked; c != nil {
		opts := *c
		if v := p.verified; v != nil && v.ChunkVerifier != nil {
			v.ChunkVerifier(&opts)
		}
		dec := signer.NewChunkedReader(rd, opts)
		rd, n = dec, opts.DecodedLength
		if p.body.reframe {
			// planBody checked what NewTrailerFramer could refuse.
			f, err := signer.NewTrailerFramer(dec, signer.FrameChunkSize)
			if err != nil {
				return nil, 0, err
			}
			rd, n = f, f.Len()
		}
	}
	return decodedBody{rd, in.Body}, n, nil
}

// readChecked reads the body of a request whose body decides access (DeleteObjects on a
// scoped route), decoded and verified as openBody sends it. The memory all such bodies
// take while they arrive is bounded by deleteBudget.
func (h *Handler) readChecked(in *http.Request, p *plan) ([]byte, *s3Error) {
	n := in.ContentLength
	if c := p.body.chunked; c != nil {
		n = c.DecodedLength
	}
	switch {
	case in.Body == nil || in.Body == http.NoBody || n == 0:
		return nil, &s3Error{Status: http.StatusBadRequest, Code: "MissingRequestBodyError", Message: "DeleteObjects needs a body"}
	case n > maxDeleteBody:
		return nil, &s3Error{Status: http.StatusBadRequest, Code: "MalformedXML", Message: "a DeleteObjects body is at most 2 MiB"}
	}
	if !h.deletes.TryAcquire(n) {
		return nil, &s3Error{Status: http.StatusServiceUnavailable, Code: "SlowDown", Message: "signet is checking too many DeleteObjects bodies at once; retry shortly"}
	}
	defer h.deletes.Release(n)
	body, _, err := openBody(in, p)
	if err != nil {
		return nil, bodyS3Error(err, "InvalidArgument", "")
	}
	return readDeleteBody(body)
}

// closeIfUnread makes an answer close the connection when the request's body was not read
// to its end. Else Go's server would read up to 256 KiB of it, with no deadline, to keep the
// connection (before answering, and again when it closes the body): a client trickling its
// body would hold the connection, and a file descriptor, for as long as it likes after
// signet has already refused it. It must run before the answer is written.
func closeIfUnread(w http.ResponseWriter, r *http.Request, x *exchange) {
	if r.ProtoMajor == 1 && (r.ContentLength != 0 || len(r.TransferEncoding) > 0) && !x.in.done() {
		w.Header().Set("Connection", "close")
		x.abandonBody = true
	}
}

// abandonGrace bounds how long a refused request's unread body is still read after the
// answer, before its connection closes.
const abandonGrace = time.Second

// abandonBody ends the wait for a body closeIfUnread gave up on, once the answer is out:
// the server's last read of it fails at once, and the connection closes.
func abandonBody(w http.ResponseWriter, x *exchange) {
	if x.abandonBody {
		// A moment for a client still sending (an SDK streaming its upload) to read the
		// answer before the connection closes; the server reads at most 256 KiB meanwhile.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(abandonGrace))
	}
}

// decodedBody reads the decoder and closes the client's body.
type decodedBody struct {
	io.Reader
	io.Closer
}

// rewrite builds the upstream request from the plan: the route's endpoint, the upstream
// bucket, the key escaped as S3 servers rebuild it, the planned query and copy source, and
// the client's headers minus its authentication. The transport signs it.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	p := exchangeFrom(pr.In.Context()).plan
	out := pr.Out
	up := p.route.Upstream

	path := "/" + p.upBucket
	if p.key != "" {
		path += "/" + p.key
	}
	out.URL.Scheme, out.URL.Host = up.URL.Scheme, up.URL.Host
	out.URL.Path, out.URL.RawPath = path, signer.EscapePath(path)
	out.URL.RawQuery = p.rawQuery
	out.Host = ""
	out.Trailer = nil // S3 has no HTTP trailers (aws-chunked ones are in the body), and none was checked

	signer.Strip(out.Header, nil)
	for k := range out.Header {
		if strings.Contains(k, "_") && !isMetaName(k) { // LowercaseMeta (in Strip) made metadata names lowercase
			// checkHeaders refused those some server could read as S3's; none is forwarded.
			delete(out.Header, k)
		}
	}
	switch c := p.body.chunked; {
	case c != nil && p.body.reframe:
		signer.SetFramedHeaders(out.Header, c.DecodedLength, c.Trailers)
	case c != nil:
		signer.StripChunkedHeaders(out.Header)
	default:
		// A plain body merely labelled aws-chunked: S3 stores it without the token.
		signer.StripChunkedEncoding(out.Header)
	}
	if p.body.contentMD5 != "" {
		out.Header.Set("Content-Md5", p.body.contentMD5)
	}
	delete(out.Header, "Content-Length") // sent from out.ContentLength
	if up.DropExpect {
		delete(out.Header, "Expect")
	}
	if p.copySource != "" {
		out.Header["X-Amz-Copy-Source"] = []string{p.copySource}
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
	x := exchangeFrom(req.Context())
	resp, err := t.send(req, x)
	if err != nil {
		return nil, err
	}
	p := x.plan
	inv, ok := p.route.Upstream.Creds.(creds.Invalidator)
	if !ok || !refusedCredentials(resp) {
		return resp, nil
	}
	inv.Invalidate(p.route.credKey(p.bucket))
	if req.Body != nil && req.Body != http.NoBody {
		return resp, nil
	}
	resp.Body.Close()
	x.retried = true
	return t.send(req.Clone(req.Context()), x)
}

func (t signingTransport) send(req *http.Request, x *exchange) (*http.Response, error) {
	ctx := req.Context()
	p := x.plan
	up := p.route.Upstream
	c, err := up.Creds.Retrieve(ctx, p.route.credKey(p.bucket))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCredentials, err)
	}
	if err := t.h.signer.Sign(ctx, req, c, up.Region, p.body.payloadHash, t.h.opts.Now()); err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	x.token = c.SessionToken
	if x.upload != nil {
		req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: x.upload.gotConn}))
	}
	return t.h.roundTrip(up, req, x)
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
	// An answer to HEAD has no body: MinIO names the code in a header instead.
	for _, h := range []string{"X-Minio-Error-Code", "X-Amz-Error-Code"} {
		if code := resp.Header.Get(h); code != "" {
			return credentialsErrorCode(code)
		}
	}
	if resp.Body == nil || resp.Body == http.NoBody {
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
	return m != nil && credentialsErrorCode(string(m[1]))
}

// credentialsErrorCode reports whether an S3 error code refuses the credentials themselves.
func credentialsErrorCode(code string) bool {
	switch code {
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
	x := exchangeFrom(resp.Request.Context())
	if x.uploadIdle != nil {
		x.uploadIdle.finish() // the upstream answered: it need take no more of the body
	}
	if x.cancel != nil && resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = pacedResponse{resp.Body, newWatchdog(h.opts.BodyIdleTimeout, func() { x.cancel(errUpstreamIdle) })}
	}
	dropUpstreamBrowserHeaders(resp.Header)
	scrubErrorBody(resp, x.token)
	if x.plan.route.Rename != "" && namesBucket(resp, x.plan) {
		renameResponse(resp, x.plan.upBucket, x.plan.bucket)
	}
	return nil
}

// namesBucket reports whether resp is an S3 answer that may name the bucket: an error, a
// bucket-level answer (listings), or a multipart upload's. Never an object's own bytes,
// which may well be XML.
func namesBucket(resp *http.Response, p *plan) bool {
	switch {
	case resp.StatusCode >= 300, p.key == "":
		return true
	}
	switch p.action {
	case actCreateMultipartUpload, actCompleteMultipartUpload, actListParts:
		return true
	}
	return false
}

func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	switch bodyErr := x.bodyErr(); {
	case x.uploadIdle != nil && x.uploadIdle.didFire(), errors.Is(context.Cause(r.Context()), errUpstreamIdle):
		err = fmt.Errorf("%w (%s)", errUpstreamIdle, h.opts.BodyIdleTimeout)
	case isTimeout(bodyErr):
		err = &s3Error{Status: http.StatusBadRequest, Code: "RequestTimeout",
			Message: fmt.Sprintf("the request body sent nothing for %s; idle connections are closed", h.opts.BodyIdleTimeout), Err: bodyErr}
	case bodyErr != nil:
		// The transport reports the failed body read as its own error.
		err = &s3Error{Status: http.StatusBadRequest, Code: "IncompleteBody",
			Message: "the request body ended before its Content-Length", Err: bodyErr}
	}
	e := statusError(r, x.plan, err)
	x.err = e
	closeIfUnread(w, r, x)
	if e.Status == StatusClientClosedRequest {
		if lw, ok := w.(*logWriter); ok {
			lw.status = e.Status
		}
		return
	}
	writeError(w, r, e, x.plan.id)
	abandonBody(w, x)
}

func (h *Handler) logRequest(x *exchange, lw *logWriter, d time.Duration) {
	p := x.plan
	bucket, keyLen := p.bucket, len(p.key)
	if pr := x.presign; pr != nil {
		bucket, keyLen = pr.Bucket, len(pr.Key)
	}
	status := lw.statusOr200()
	level := slog.LevelInfo
	var buf [14]slog.Attr // every attribute below: the slice never grows onto the heap
	attrs := append(buf[:0],
		slog.String("id", p.id),
		slog.String("method", p.method),
		slog.String("bucket", bucket),
		slog.Int("key_len", keyLen),
		slog.Int("status", status),
		slog.Int64("bytes_in", x.in.count()),
		slog.Int64("bytes_out", lw.n),
		slog.Duration("duration", d),
	)
	if p.action != "" {
		attrs = append(attrs, slog.String("action", string(p.action)))
	}
	if p.route != nil {
		attrs = append(attrs, slog.String("account", p.route.Upstream.Account))
	}
	if x.retried {
		attrs = append(attrs, slog.Bool("retried_after_credentials_refused", true)) // with new ones unless minted moments ago
	}
	if p.client != nil {
		attrs = append(attrs, slog.String("client", p.client.name))
	}
	if x.upstreamCode != "" {
		attrs = append(attrs, slog.String("upstream_error", x.upstreamCode))
		if hint := upstreamHint(x.upstreamCode); hint != "" {
			attrs, level = append(attrs, slog.String("hint", hint)), slog.LevelWarn
		}
	}
	if x.err != nil {
		attrs = append(attrs, slog.String("error", x.err.Code), slog.String("message", x.err.Message))
		if x.err.Status >= 500 && x.err.Status != StatusClientClosedRequest {
			level = slog.LevelWarn
		}
	}
	// The Handler, not Logger.LogAttrs: that asks runtime.Callers for the caller's program
	// counter on every call, for a source location the request line never shows, which
	// cost more than any attribute. (slog's own wrappers build Records this way.)
	lh := h.opts.Logger.Handler()
	if !lh.Enabled(context.Background(), level) {
		return
	}
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(attrs...)
	_ = lh.Handle(context.Background(), rec)
}

// logWriter records the status and body size written, and, with an idle timeout, pushes
// the connection's write deadline forward before each write.
type logWriter struct {
	http.ResponseWriter
	status int
	n      int64
	rc     *http.ResponseController // nil: no idle timeout
	idle   time.Duration
	wd     deadline // the write deadline, pushed forward as the answer is written
	// own are the headers signet set for its final answer before forwarding (request id,
	// Connection: close, ...). ReverseProxy writes an upstream's 1xx (100 Continue) with
	// whatever the header map holds, then clears the map: own would go out on the 1xx (a
	// Connection: close there makes Node's parser fail the upload with "Data after
	// Connection: close") and be lost from the final answer. So they are kept off 1xx
	// responses and put back for the final one.
	own http.Header
}

// clearDeadlines lifts the deadlines the idle timeout set, for the connection's next
// request; the read deadline stays when the body was abandoned (see abandonBody).
func (w *logWriter) clearDeadlines(x *exchange) {
	_ = w.rc.SetWriteDeadline(time.Time{})
	if x.in != nil && !x.abandonBody {
		_ = w.rc.SetReadDeadline(time.Time{})
	}
}

func (w *logWriter) WriteHeader(code int) {
	if code < 200 && w.own != nil {
		h := w.Header()
		for k := range w.own {
			delete(h, k)
		}
	}
	if code >= 200 && w.status == 0 {
		h := w.Header()
		for k, v := range w.own {
			if _, ok := h[k]; !ok {
				h[k] = v
			}
		}
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
	if w.rc != nil {
		if w.wd.idle == 0 {
			w.wd.idle = w.idle
		}
		if at, ok := w.wd.push(); ok {
			_ = w.rc.SetWriteDeadline(at)
		}
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
	eof atomic.Bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	switch {
	case err == io.EOF:
		b.eof.Store(true)
	case err != nil:
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

// done reports whether the body was read to its end; true for a nil body.
func (b *countingBody) done() bool { return b == nil || b.eof.Load() }

// count is how many body bytes were read; 0 for a nil body.
func (b *countingBody) count() int64 {
	if b == nil {
		return 0
	}
	return b.n.Load()
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

// copyBufferSize: larger than io.Copy's 32 KiB, which measurably slows large GETs; 256 KiB,
// as the bare hop of issue 16 copies, moves a 1 GiB GET in half the writes of 128 KiB.
const copyBufferSize = 256 << 10

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
