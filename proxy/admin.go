package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/signet-proxy/signet/creds"
)

// Admin returns the admin listener's handler: /healthz (the process is up), /readyz (every
// exactly named route has valid credentials, every upstream answers HTTP and signet is not
// draining; the body says what is not ready) and /metrics (Prometheus, from gatherer; nil
// leaves it out). It hands out no access, so probes and scrapers may reach it from the
// network.
func (h *Handler) Admin(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if h.draining.Load() {
			http.Error(w, "not ready: draining for shutdown", http.StatusServiceUnavailable)
			return
		}
		problems := h.Ready(r.Context())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready:\n%s\n", strings.Join(problems, "\n"))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

// Drain makes /readyz answer 503 from now on, so that load balancers stop sending
// requests while the S3 listener drains.
func (h *Handler) Drain() { h.draining.Store(true) }

// Ready checks that every exactly named route has valid credentials that upstream has not
// refused, and that every upstream can be reached, and returns a line for each problem.
// Credentials are judged at once, from what the providers hold (their Status), never
// waiting for a mint: a key with nothing held yet is minted in the background (Prefetch)
// and reported as not ready until that succeeds. Glob routes name no bucket to check. A
// minted credential that is still valid counts, even while its refresh is failing: signet
// can still sign. Providers that report no Status (none of signet's own) count as ready.
// Reachability waits at most reachTimeout.
func (h *Handler) Ready(ctx context.Context) []string {
	t := h.acquireTable()
	defer t.release()
	statuses := map[creds.Provider][]creds.KeyStatus{} // one Status per provider
	var problems []string
	for _, r := range t.routes {
		if r.IsGlob() {
			continue
		}
		p := r.Upstream.Creds
		sp, ok := p.(interface{ Status() []creds.KeyStatus })
		if !ok {
			continue
		}
		st, seen := statuses[p]
		if !seen {
			st = sp.Status()
			statuses[p] = st
		}
		if err := keyReady(p, st, r.credKey(r.Pattern)); err != nil {
			problems = append(problems, fmt.Sprintf("bucket %s (account %s): %v", r.Pattern, r.Upstream.Account, err))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	return append(problems, h.unreachable(ctx, t.upstreams)...)
}

// reachTimeout bounds /readyz's reachability probes: under the 1 s a kubelet probe waits
// by default would be too tight for a cold TLS connection to a distant upstream, and
// anything longer holds readiness up while an upstream hangs.
const reachTimeout = 2 * time.Second

// unreachable sends an unsigned HEAD / to each upstream endpoint, at once, and returns a
// line for each that gave no HTTP answer at all (DNS, connection, TLS or a hung server).
// Any answer, a 403 included, means it can be reached: whether signet's credentials are
// accepted is `signet check`'s job, which spends signed requests on it, while probes run
// /readyz every few seconds.
func (h *Handler) unreachable(ctx context.Context, ups []*Upstream) []string {
	type probe struct {
		up  *Upstream
		err error
	}
	seen := map[string]bool{}
	var probes []*probe
	for _, up := range ups {
		if !seen[up.URL.String()] {
			seen[up.URL.String()] = true
			probes = append(probes, &probe{up: up})
		}
	}
	var wg sync.WaitGroup
	for _, p := range probes {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodHead, p.up.URL.String()+"/", nil)
			if err != nil {
				p.err = err
				return
			}
			resp, err := h.transport(p.up).RoundTrip(req)
			if err != nil {
				p.err = err
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	var problems []string
	for _, p := range probes {
		if p.err != nil {
			problems = append(problems, fmt.Sprintf("account %s: upstream %s cannot be reached: %v", p.up.Account, p.up.URL, p.err))
		}
	}
	return problems
}

// keyReady judges key from p's statuses (a zero Key stands for every key, as File's does).
func keyReady(p creds.Provider, statuses []creds.KeyStatus, key creds.Key) error {
	prefetch := func() {
		if pf, ok := p.(interface{ Prefetch(creds.Key) }); ok {
			pf.Prefetch(key)
		}
	}
	i := slices.IndexFunc(statuses, func(s creds.KeyStatus) bool { return s.Key == key || s.Key == creds.Key{} })
	if i < 0 {
		prefetch()
		return fmt.Errorf("%w yet: minting in the background", creds.ErrNoCredentials)
	}
	s := statuses[i]
	switch {
	case s.Refused:
		return errors.New("upstream refused the credentials held (revoked or expired keys?)")
	case s.Idle:
		prefetch() // unused for a while, so not refreshed: mint again, for the next probe
		return nil
	case !s.Valid && s.LastError != nil:
		prefetch()
		return fmt.Errorf("%w (%d failed mints): %w", creds.ErrNoCredentials, s.Failures, s.LastError)
	case !s.Valid && !s.Expires.IsZero():
		prefetch()
		return fmt.Errorf("%w: the credentials held expire at %s", creds.ErrNoCredentials, s.Expires.UTC().Format(time.RFC3339))
	case !s.Valid:
		prefetch()
		return creds.ErrNoCredentials
	}
	return nil
}
