package proxy

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"

	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/signer"
)

// s3Error is an answer signet gives itself, written as S3 XML: the same type as the
// signer's refusals of a body or signature, so that there is one shape of S3 error.
type s3Error = signer.Error

func errInvalidURI(msg string) *s3Error {
	return &s3Error{Status: http.StatusBadRequest, Code: "InvalidURI", Message: msg}
}

func quote(s string) string { return strconv.Quote(s) }

// StatusClientClosedRequest is logged, never sent, when the client went away first.
const StatusClientClosedRequest = 499

// errorBody is S3's error document.
type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}

// writeError writes e as an S3 XML error.
func writeError(w http.ResponseWriter, r *http.Request, e *s3Error, requestID string) {
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Del("Content-Length")
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(e.RetryAfter.Seconds())))))
	}
	body, err := xml.Marshal(errorBody{Code: e.Code, Message: e.Message, Resource: r.URL.Path, RequestID: requestID})
	if err != nil { // only strings: cannot happen
		body = []byte("<Error><Code>InternalError</Code></Error>")
	}
	if r.Method != http.MethodHead {
		h.Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	}
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(xml.Header))
		_, _ = w.Write(body)
	}
}

// statusError maps a forwarding error to the answer signet gives (caddy's statusError):
// the client's own body problems keep their S3 code, missing credentials are 503, a
// timeout 504, a client that went away 499, and anything else 502.
func statusError(r *http.Request, p *plan, err error) *s3Error {
	if e, ok := errors.AsType[*s3Error](err); ok { // the client's body, as the signer read it
		return &s3Error{Status: e.Status, Code: e.Code, Message: e.Message, RetryAfter: e.RetryAfter}
	}
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		return &s3Error{Status: StatusClientClosedRequest, Code: "ClientClosedRequest", Message: "the client closed the request"}
	}
	where := "upstream"
	if p != nil && p.route != nil {
		up := p.route.Upstream
		where = fmt.Sprintf("upstream %s (account %s", up.URL, up.Account)
		if up.Jurisdiction != "default" {
			where += ", jurisdiction " + up.Jurisdiction
		}
		where += ")"
	}
	if be, ok := errors.AsType[*creds.BudgetError](err); ok {
		// Minting now would spend the Cloudflare API calls that keep live credentials fresh.
		return &s3Error{Status: http.StatusServiceUnavailable, Code: "SlowDown", RetryAfter: be.RetryAfter,
			Message: "signet's budget of Cloudflare API calls for " + where + " is spent; retry later: " + err.Error()}
	}
	if errors.Is(err, creds.ErrNoCredentials) || errors.Is(err, errCredentials) {
		return &s3Error{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Message: "no credentials to sign for " + where + ": " + err.Error()}
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errUpstreamIdle) {
		return &s3Error{Status: http.StatusGatewayTimeout, Code: "GatewayTimeout", Message: where + " timed out: " + err.Error()}
	}
	return &s3Error{Status: http.StatusBadGateway, Code: "BadGateway", Message: where + " failed: " + err.Error()}
}

// bodyS3Error is the answer to a failure reading the client's body: the body's own S3
// error when it has one (bad framing, a checksum or signature that does not match), else
// code with msg (or the error's text when msg is empty).
func bodyS3Error(err error, code, msg string) *s3Error {
	if e, ok := errors.AsType[*s3Error](err); ok {
		return &s3Error{Status: e.Status, Code: e.Code, Message: e.Message}
	}
	if msg == "" {
		msg = err.Error()
	}
	return &s3Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}
