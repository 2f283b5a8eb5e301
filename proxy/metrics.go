package proxy

import (
	"path"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-proxy/signet/creds"
)

// Metrics are signet's Prometheus series. Labels never carry a name the client chose:
// buckets are labelled with the route that matched (its configured name or glob), or "-".
type Metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	bytesIn        *prometheus.HistogramVec
	bytesOut       *prometheus.HistogramVec
	inFlight       prometheus.Gauge
	upstreamErrors *prometheus.CounterVec
	mints          *prometheus.CounterVec
	mintDuration   *prometheus.HistogramVec
	reloads        *prometheus.CounterVec

	// The per-request series, looked up once: WithLabelValues hashes its labels and takes
	// a lock on every call, four times a request. perMethod is by s3Methods index, the last
	// entry "other"; counters holds each (method, route, status) counter once used.
	perMethod [len(s3Methods) + 1]methodSeries
	counters  sync.Map // requestLabels → prometheus.Counter
}

// methodSeries are the histograms of one method label.
type methodSeries struct {
	duration, bytesIn, bytesOut prometheus.Observer
}

// requestLabels are the labels of signet_requests_total.
type requestLabels struct {
	method, route string
	status        int
}

// bodyBuckets run from 1 KiB to 16 GiB by powers of 4.
var bodyBuckets = prometheus.ExponentialBuckets(1024, 4, 13)

// NewMetrics registers signet's series on reg. table returns the current route table, for
// the credential-expiry gauge read at scrape time.
func NewMetrics(reg prometheus.Registerer, table func() *Table) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_requests_total", Help: "S3 requests answered, by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_request_duration_seconds", Help: "Time from request to the end of the response.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"method"}),
		bytesIn: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_request_body_bytes", Help: "Request body bytes read from clients.", Buckets: bodyBuckets,
		}, []string{"method"}),
		bytesOut: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_response_body_bytes", Help: "Response body bytes written to clients.", Buckets: bodyBuckets,
		}, []string{"method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "signet_requests_in_flight", Help: "S3 requests being served.",
		}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_upstream_errors_total", Help: "Requests that failed to reach or hear from an upstream, by account and signet's error code.",
		}, []string{"account", "code"}),
		mints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_credential_mints_total", Help: "Credential mints, by account and result (ok or error).",
		}, []string{"account", "result"}),
		mintDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_credential_mint_duration_seconds", Help: "Time a credential mint took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"account"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_config_reloads_total", Help: "Config reloads, by result (ok or error).",
		}, []string{"result"}),
	}
	for i := range m.perMethod {
		method := "other"
		if i < len(s3Methods) {
			method = s3Methods[i]
		}
		m.perMethod[i] = methodSeries{
			duration: m.duration.WithLabelValues(method),
			bytesIn:  m.bytesIn.WithLabelValues(method),
			bytesOut: m.bytesOut.WithLabelValues(method),
		}
	}
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.inFlight, m.upstreamErrors,
		m.mints, m.mintDuration, m.reloads, expiryCollector{table})
	return m
}

// Reloaded counts a config reload.
func (m *Metrics) Reloaded(err error) {
	if m == nil {
		return
	}
	m.reloads.WithLabelValues(result(err)).Inc()
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

func (m *Metrics) mintHook(account string) func(*creds.CacheOptions) {
	return func(o *creds.CacheOptions) {
		o.OnMint = func(_ creds.Key, err error, took time.Duration) {
			m.mints.WithLabelValues(account, result(err)).Inc()
			m.mintDuration.WithLabelValues(account).Observe(took.Seconds())
		}
	}
}

func (m *Metrics) observe(x *exchange, status int, in, out int64, d time.Duration) {
	if m == nil {
		return
	}
	method, rt, e := x.plan.method, x.plan.route, x.err
	route := "-"
	if rt != nil {
		route = rt.Pattern
	}
	i := slices.Index(s3Methods[:], method)
	if i < 0 {
		method, i = "other", len(s3Methods) // refused; a client must not mint series with made-up methods
	}
	l := requestLabels{method, route, status}
	c, ok := m.counters.Load(l)
	if !ok {
		// Route patterns come from the config and statuses from a small set, so the map
		// stays as small as the series themselves; a reload's gone routes linger in both.
		c, _ = m.counters.LoadOrStore(l, m.requests.WithLabelValues(method, route, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	ms := &m.perMethod[i]
	ms.duration.Observe(d.Seconds())
	ms.bytesIn.Observe(float64(in))
	ms.bytesOut.Observe(float64(out))
	if e != nil && rt != nil && (e.Status == 502 || e.Status == 504 || e.Status == 503) {
		m.upstreamErrors.WithLabelValues(rt.Upstream.Account, e.Code).Inc()
	}
}

// expiryCollector reports, at scrape time, how long held credentials have left: the
// soonest expiry per account, bucket and permission. Buckets reached through a glob route
// are reported under the glob, so that clients cannot add series by naming buckets.
type expiryCollector struct{ table func() *Table }

var expiryDesc = prometheus.NewDesc("signet_credential_expiry_seconds",
	"Seconds until the soonest-expiring held credential expires, by account, upstream bucket (or the glob route that matched it) and permission (absent: does not expire).",
	[]string{"account", "bucket", "permission"}, nil)

func (c expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c expiryCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.table()
	if t == nil {
		return
	}
	type series struct{ account, bucket, permission string }
	soonest := make(map[series]time.Time)
	for account, p := range t.providers {
		s, ok := p.(interface{ Status() []creds.KeyStatus })
		if !ok {
			continue
		}
		for _, ks := range s.Status() {
			if ks.Expires.IsZero() {
				continue
			}
			// One series may stand for several credentials: a bucket's under several
			// prefixes or jurisdictions, a glob's buckets.
			k := series{account, t.expiryLabel(account, ks.Key.Bucket), ks.Key.Permission}
			if e, ok := soonest[k]; !ok || ks.Expires.Before(e) {
				soonest[k] = ks.Expires
			}
		}
	}
	now := time.Now()
	for k, e := range soonest {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, e.Sub(now).Seconds(), k.account, k.bucket, k.permission)
	}
}

// expiryLabel names upstream bucket of account in metrics: itself when a route names it
// exactly, else the first glob route of the account that matches it, else "-".
func (t *Table) expiryLabel(account, bucket string) string {
	for _, r := range t.exact {
		if r.Upstream.Account == account && r.UpstreamBucket(r.Pattern) == bucket {
			return bucket
		}
	}
	for _, r := range t.globs {
		if ok, _ := path.Match(r.Pattern, bucket); ok && r.Upstream.Account == account {
			return r.Pattern
		}
	}
	return "-"
}
