package testenv

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TempCredentialsRequest is the body of Cloudflare's temp-access-credentials call, as the
// fake received it.
type TempCredentialsRequest struct {
	Bucket            string   `json:"bucket"`
	ParentAccessKeyID string   `json:"parentAccessKeyId"`
	Permission        string   `json:"permission"`
	TTLSeconds        int64    `json:"ttlSeconds"`
	Prefixes          []string `json:"prefixes,omitempty"`
	Objects           []string `json:"objects,omitempty"`
}

// CFError is one entry of a Cloudflare v4 envelope's errors.
type CFError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Fault makes the fake answer one call badly. The zero Fault answers normally.
type Fault struct {
	// Status is the HTTP status to answer with. Default: 200 if Body is set, 500 if Errors
	// is set, else the normal answer's.
	Status int
	// RetryAfter is sent as the Retry-After header when not empty.
	RetryAfter string
	// Body, when not empty, is sent as it is (e.g. malformed JSON).
	Body string
	// Errors, when not empty, are sent in a "success": false envelope.
	Errors []CFError
	// Hold delays the answer until it is closed or the client gives up; Hang delays it until
	// the client gives up (or the fake is cleaned up).
	Hold <-chan struct{}
	Hang bool
}

// Issued records one set of credentials the fake handed out.
type Issued struct {
	At          time.Time
	Request     TempCredentialsRequest
	AccessKeyID string
	// Expires is the backing credentials' own expiry (MinIO's, for R2Like).
	Expires time.Time
}

// FakeCloudflareConfig configures a [FakeCloudflare].
type FakeCloudflareConfig struct {
	// AccountID is the account in the URL path the fake serves. Default: "acct-test".
	AccountID string
	// Token is the Bearer token the fake accepts. Default: "cf-test-token".
	Token string
	// ParentAccessKeyID, when not empty, is the only parentAccessKeyId the fake accepts.
	ParentAccessKeyID string
	// Mint produces the credentials for a valid call, e.g. (*MinIO).R2Like. Default: made-up
	// credentials, unique per call, that no server accepts.
	Mint func(ctx context.Context, req TempCredentialsRequest) (aws.Credentials, error)
	// RateLimit, when Calls is set, answers as Cloudflare's rate limit does: beyond Calls
	// calls in Window, 429 with Retry-After, and every call blocked for Block (Cloudflare:
	// 1200 calls in 5 minutes, then blocked for 5 minutes). Default: no limit.
	RateLimit RateLimit
}

// RateLimit is a [FakeCloudflareConfig]'s rate limit.
type RateLimit struct {
	Calls  int
	Window time.Duration
	Block  time.Duration
}

// FakeCloudflare serves POST /client/v4/accounts/{account_id}/r2/temp-access-credentials
// as Cloudflare documents it: Bearer authentication (401 envelope otherwise), a JSON body
// with required bucket, parentAccessKeyId, permission (one of the four R2 permissions) and
// ttlSeconds (1..604800), optional prefixes and objects (400 envelope otherwise), and a
// success envelope with accessKeyId, secretAccessKey and sessionToken. Faults queued with
// Inject replace the next answers. The error codes are made up where Cloudflare documents
// none (10001 for a bad body); 10000 (authentication) and 7000 (no route) are Cloudflare's.
type FakeCloudflare struct {
	// BaseURL is the API base to give a client, ".../client/v4".
	BaseURL string

	cfg     FakeCloudflareConfig
	release chan struct{} // closed at cleanup: held and hanging answers end
	// connClosed receives a value each time a client connection closes.
	connClosed chan struct{}

	mu      sync.Mutex
	faults  []Fault
	issued  []Issued
	calls   int
	madeUpN int
	recent  []time.Time // calls within RateLimit.Window
	blocked time.Time   // rate limited until then
	limited int         // calls answered 429 by the rate limit
}

// NewFakeCloudflare starts the fake on a loopback port and closes it in t.Cleanup.
func NewFakeCloudflare(t testing.TB, cfg FakeCloudflareConfig) *FakeCloudflare {
	t.Helper()
	if cfg.AccountID == "" {
		cfg.AccountID = "acct-test"
	}
	if cfg.Token == "" {
		cfg.Token = "cf-test-token"
	}
	f := &FakeCloudflare{cfg: cfg, release: make(chan struct{})}
	if f.cfg.Mint == nil {
		f.cfg.Mint = f.madeUp
	}
	f.connClosed = make(chan struct{}, 1024)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed || s == http.StateHijacked {
			select {
			case f.connClosed <- struct{}{}:
			default:
			}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.release) }) // runs before srv.Close, which waits for handlers
	f.BaseURL = srv.URL + "/client/v4"
	return f
}

// AccountID and Token are what the fake accepts.
func (f *FakeCloudflare) AccountID() string { return f.cfg.AccountID }
func (f *FakeCloudflare) Token() string     { return f.cfg.Token }

// ConnClosed receives a value each time a connection to the fake is closed, by either side.
func (f *FakeCloudflare) ConnClosed() <-chan struct{} { return f.connClosed }

// Inject queues faults for the next calls, one call each, in order.
func (f *FakeCloudflare) Inject(faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, faults...)
}

// Calls counts the calls received, whatever the answer.
func (f *FakeCloudflare) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// SetRateLimit replaces the configured rate limit, from the next call on.
func (f *FakeCloudflare) SetRateLimit(rl RateLimit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg.RateLimit = rl
}

// RateLimited counts the calls the rate limit answered with 429.
func (f *FakeCloudflare) RateLimited() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limited
}

// rateLimited reports whether the rate limit refuses a call at now, and for how long.
// Needs mu.
func (f *FakeCloudflare) rateLimited(now time.Time) (time.Duration, bool) {
	rl := f.cfg.RateLimit
	if rl.Calls == 0 {
		return 0, false
	}
	if now.Before(f.blocked) {
		return f.blocked.Sub(now), true
	}
	cut := 0
	for cut < len(f.recent) && now.Sub(f.recent[cut]) >= rl.Window {
		cut++
	}
	f.recent = append(f.recent[cut:], now)
	if len(f.recent) > rl.Calls {
		f.blocked = now.Add(rl.Block)
		return rl.Block, true
	}
	return 0, false
}

// Issued returns the credentials handed out so far, oldest first.
func (f *FakeCloudflare) Issued() []Issued {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Issued(nil), f.issued...)
}

func (f *FakeCloudflare) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls++
	if wait, limited := f.rateLimited(time.Now()); limited {
		f.limited++
		f.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)))
		writeEnvelope(w, http.StatusTooManyRequests, []CFError{{971, "Please wait and consider throttling your request speed"}}, nil)
		return
	}
	var fault *Fault
	if len(f.faults) > 0 {
		fault = &f.faults[0]
		f.faults = f.faults[1:]
	}
	f.mu.Unlock()

	if fault != nil {
		if fault.Hang || fault.Hold != nil {
			select {
			case <-fault.Hold: // nil when Hang: never ready
			case <-r.Context().Done():
				return
			case <-f.release:
				return
			}
		}
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		switch {
		case fault.Body != "":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(cmp.Or(fault.Status, http.StatusOK))
			_, _ = w.Write([]byte(fault.Body))
			return
		case len(fault.Errors) > 0:
			writeEnvelope(w, cmp.Or(fault.Status, http.StatusInternalServerError), fault.Errors, nil)
			return
		case fault.Status != 0:
			writeEnvelope(w, fault.Status, []CFError{{Code: 10000, Message: http.StatusText(fault.Status)}}, nil)
			return
		}
	}

	path := "/client/v4/accounts/" + f.cfg.AccountID + "/r2/temp-access-credentials"
	if r.URL.EscapedPath() != path {
		writeEnvelope(w, http.StatusNotFound, []CFError{{7000, "No route for that URI"}}, nil)
		return
	}
	if r.Method != http.MethodPost {
		writeEnvelope(w, http.StatusMethodNotAllowed, []CFError{{10405, "Method not allowed"}}, nil)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.cfg.Token {
		writeEnvelope(w, http.StatusUnauthorized, []CFError{{10000, "Authentication error"}}, nil)
		return
	}
	req, errs := f.parse(r)
	if len(errs) > 0 {
		writeEnvelope(w, http.StatusBadRequest, errs, nil)
		return
	}
	cr, err := f.cfg.Mint(r.Context(), req)
	if err != nil {
		writeEnvelope(w, http.StatusInternalServerError, []CFError{{10002, "mint: " + err.Error()}}, nil)
		return
	}
	f.mu.Lock()
	f.issued = append(f.issued, Issued{At: time.Now(), Request: req, AccessKeyID: cr.AccessKeyID, Expires: cr.Expires})
	f.mu.Unlock()
	writeEnvelope(w, http.StatusOK, nil, map[string]string{
		"accessKeyId":     cr.AccessKeyID,
		"secretAccessKey": cr.SecretAccessKey,
		"sessionToken":    cr.SessionToken,
	})
}

// parse validates the body as the API documents it.
func (f *FakeCloudflare) parse(r *http.Request) (TempCredentialsRequest, []CFError) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return TempCredentialsRequest{}, []CFError{{10001, "Content-Type must be application/json"}}
	}
	var raw struct {
		Bucket            *string      `json:"bucket"`
		ParentAccessKeyID *string      `json:"parentAccessKeyId"`
		Permission        *string      `json:"permission"`
		TTLSeconds        *json.Number `json:"ttlSeconds"`
		Prefixes          []string     `json:"prefixes"`
		Objects           []string     `json:"objects"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return TempCredentialsRequest{}, []CFError{{10001, "invalid JSON body: " + err.Error()}}
	}
	var errs []CFError
	var req TempCredentialsRequest
	switch {
	case raw.Bucket == nil || *raw.Bucket == "":
		errs = append(errs, CFError{10001, "bucket is required"})
	default:
		req.Bucket = *raw.Bucket
	}
	switch {
	case raw.ParentAccessKeyID == nil || *raw.ParentAccessKeyID == "":
		errs = append(errs, CFError{10001, "parentAccessKeyId is required"})
	case f.cfg.ParentAccessKeyID != "" && *raw.ParentAccessKeyID != f.cfg.ParentAccessKeyID:
		errs = append(errs, CFError{10001, "parentAccessKeyId is not a key of this account"})
	default:
		req.ParentAccessKeyID = *raw.ParentAccessKeyID
	}
	switch {
	case raw.Permission == nil:
		errs = append(errs, CFError{10001, "permission is required"})
	case *raw.Permission != "admin-read-write" && *raw.Permission != "admin-read-only" &&
		*raw.Permission != "object-read-write" && *raw.Permission != "object-read-only":
		errs = append(errs, CFError{10001, fmt.Sprintf("permission %q is not one of admin-read-write, admin-read-only, object-read-write, object-read-only", *raw.Permission)})
	default:
		req.Permission = *raw.Permission
	}
	if raw.TTLSeconds == nil {
		errs = append(errs, CFError{10001, "ttlSeconds is required"})
	} else if ttl, err := strconv.ParseInt(raw.TTLSeconds.String(), 10, 64); err != nil || ttl < 1 || ttl > 604800 {
		errs = append(errs, CFError{10001, "ttlSeconds must be an integer from 1 to 604800"})
	} else {
		req.TTLSeconds = ttl
	}
	for _, p := range append(append([]string(nil), raw.Prefixes...), raw.Objects...) {
		if p == "" {
			errs = append(errs, CFError{10001, "prefixes and objects must not contain empty strings"})
			break
		}
	}
	req.Prefixes, req.Objects = raw.Prefixes, raw.Objects
	return req, errs
}

// madeUp is the default Mint: unique credentials that no server accepts.
func (f *FakeCloudflare) madeUp(_ context.Context, req TempCredentialsRequest) (aws.Credentials, error) {
	f.mu.Lock()
	f.madeUpN++
	n := f.madeUpN
	f.mu.Unlock()
	return aws.Credentials{
		AccessKeyID:     fmt.Sprintf("FAKEAK%04d", n),
		SecretAccessKey: fmt.Sprintf("fake-secret-%04d-%s", n, strings.Repeat("x", 8)),
		SessionToken:    fmt.Sprintf("fake-session-%04d", n),
		CanExpire:       true,
		Expires:         time.Now().Add(time.Duration(req.TTLSeconds) * time.Second),
	}, nil
}

// writeEnvelope writes Cloudflare's v4 envelope.
func writeEnvelope(w http.ResponseWriter, status int, errs []CFError, result any) {
	if errs == nil {
		errs = []CFError{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"success":  len(errs) == 0 && status < 300,
		"errors":   errs,
		"messages": []any{},
		"result":   result,
	})
}
