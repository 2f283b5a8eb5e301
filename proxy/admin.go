package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds the credential checks of one /readyz.
const readyTimeout = 5 * time.Second

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

// Ready checks that every exactly named route can get valid credentials now, and returns
// a line for each that cannot. Glob routes name no bucket to check. A minted credential
// that is still valid counts, even while its refresh is failing: signet can still sign.
func (h *Handler) Ready(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	t := h.acquireTable()
	defer t.release()
	var problems []string
	for _, r := range t.routes {
		if r.IsGlob() {
			continue
		}
		if _, err := r.Upstream.Creds.Retrieve(ctx, r.credKey(r.Pattern)); err != nil {
			problems = append(problems, fmt.Sprintf("bucket %s (account %s): %v", r.Pattern, r.Upstream.Account, err))
		}
	}
	return problems
}
