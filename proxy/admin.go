package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/signet-proxy/signet/creds"
)

// Admin returns the admin listener's handler: /healthz (the process is up), /readyz (every
// exactly named route has valid credentials and signet is not draining; the body says what
// is not ready) and /metrics (Prometheus, from gatherer; nil leaves it out). It hands out
// no access, so probes and scrapers may reach it from the network.
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
// refused, and returns a line for each that has not. It answers at once, from what the
// providers hold (their Status), never waiting for a mint: a key with nothing held yet is
// minted in the background (Prefetch) and reported as not ready until that succeeds. Glob
// routes name no bucket to check. A minted credential that is still valid counts, even
// while its refresh is failing: signet can still sign. Providers that report no Status
// (none of signet's own) count as ready.
func (h *Handler) Ready(context.Context) []string {
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
