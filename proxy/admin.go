package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds the credential checks of one /readyz.
const readyTimeout = 5 * time.Second

// Admin returns the admin listener's handler: /healthz (the process is up), /readyz (every
// exactly named route has valid credentials, every upstream answers HTTP and signet is not
// draining; the body says what is not ready) and /metrics (Prometheus, from gatherer; nil leaves it out). It hands out
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

// Ready checks that every exactly named route can get valid credentials now and that
// every upstream can be reached, and returns a line for each problem. Glob routes name no bucket to check. A minted credential
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
	return append(problems, h.unreachable(ctx, t.upstreams)...)
}

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
