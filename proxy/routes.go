package proxy

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/creds"
)

// Upstream is one account in one jurisdiction: where requests go and how they are signed.
type Upstream struct {
	Account      string
	Jurisdiction string
	// Source names the credential source (static, file, r2_temp_api, r2_temp_local).
	Source string
	// URL is the endpoint: scheme and host only.
	URL *url.URL
	// Host is the account's real host name for the jurisdiction, which R2 credentials are
	// scoped to; it differs from URL.Host only when the endpoint is overridden.
	Host   string
	Region string
	Creds  creds.Provider
	// Transport carries the account's requests, with its timeouts; shared by the
	// account's jurisdictions.
	Transport *http.Transport
	// BucketScoped: the credentials cover one bucket each (R2 temporary credentials), so
	// no copy between two buckets can be signed.
	BucketScoped bool
	// DropExpect removes Expect: 100-continue from forwarded requests. R2 never answers
	// 100 Continue, so the transport would hold every such upload's body back for
	// ExpectContinueTimeout first.
	DropExpect bool
}

// Route is one configured bucket route.
type Route struct {
	// Pattern is the configured name or glob.
	Pattern  string
	Upstream *Upstream
	// Rename is the upstream bucket name, when it differs from the client's.
	Rename   string
	ReadOnly bool
	// key is the credential this route needs, but for the bucket name (set per request).
	key creds.Key
	// scope confines the route's requests to its prefixes and objects.
	scope scope
	// actions, when set, are the only S3 actions (R2's names) the route allows.
	actions []string
	glob    bool
}

// IsGlob reports whether the route matches bucket names by pattern.
func (r *Route) IsGlob() bool { return r.glob }

// UpstreamBucket is the name of bucket (a name this route matched) upstream.
func (r *Route) UpstreamBucket(bucket string) string {
	if r.Rename != "" {
		return r.Rename
	}
	return bucket
}

// credKey describes the credentials a request on bucket needs.
func (r *Route) credKey(bucket string) creds.Key {
	k := r.key
	k.Bucket = r.UpstreamBucket(bucket)
	return k
}

// joinSorted is a creds.Key list: sorted, newline-joined.
func joinSorted(list []string) string {
	return strings.Join(slices.Sorted(slices.Values(list)), "\n")
}

// Table is an immutable route table built from a config.
type Table struct {
	exact     map[string]*Route
	globs     []*Route
	globIndex globIndex // over globs
	routes    []*Route  // all, in config order
	upstreams []*Upstream
	suffixes  []string
	// listUpstream: ListBuckets asks the upstreams of glob routes which buckets exist.
	listUpstream bool
	created      time.Time
	// providers and accounts, by account name, let a reload keep unchanged providers
	// (and transports, with their idle connections).
	providers  map[string]creds.Provider
	transports map[string]*http.Transport
	accounts   map[string]*config.Account
	keyFiles   map[string][sha256.Size]byte // by account: keyFilesSum at setup
	// clients, when set, must sign every request.
	clients *clients
	// origins are the web origins whose browser requests are let in.
	origins []string
	life    lifecycle
}

// NewTable builds the route table of cfg, signing each account with providers[account].
func NewTable(cfg *config.Config, providers map[string]creds.Provider) (*Table, error) {
	return newTable(cfg, providers, nil)
}

// newTable is NewTable reusing the transports given by account name; it builds the others.
func newTable(cfg *config.Config, providers map[string]creds.Provider, transports map[string]*http.Transport) (*Table, error) {
	t := &Table{
		providers:  providers,
		transports: map[string]*http.Transport{},
		exact:      make(map[string]*Route),
		suffixes:   cfg.VirtualHostSuffixes,
		origins:    cfg.AllowedOrigins,
		created:    time.Now().UTC(),
	}
	ups := map[[2]string]*Upstream{}
	for _, b := range cfg.Buckets {
		acct := cfg.Accounts[b.Account]
		up := ups[[2]string{b.Account, b.Jurisdiction}]
		if up == nil {
			p := providers[b.Account]
			if p == nil {
				return nil, fmt.Errorf("account %s: no credentials provider", b.Account)
			}
			var err error
			if up, err = newUpstream(b.Account, b.Jurisdiction, acct, p); err != nil {
				return nil, err
			}
			tr := t.transports[b.Account]
			if tr == nil {
				if tr = transports[b.Account]; tr == nil {
					tr = NewTransport(acct.Timeouts)
				}
				t.transports[b.Account] = tr
			}
			up.Transport = tr
			ups[[2]string{b.Account, b.Jurisdiction}] = up
			t.upstreams = append(t.upstreams, up)
		}
		r := &Route{Pattern: b.Name, Upstream: up, Rename: b.UpstreamBucket, ReadOnly: b.Access == config.AccessReadOnly,
			key: creds.Key{
				Jurisdiction: up.Jurisdiction,
				Host:         up.Host,
				Permission:   b.Permission(),
				Prefixes:     joinSorted(b.Prefixes),
				Objects:      joinSorted(b.Objects),
				Actions:      joinSorted(b.Actions),
			},
			scope:   scope{prefixes: b.Prefixes, objects: b.Objects},
			actions: b.Actions,
			glob:    b.IsGlob(),
		}
		t.routes = append(t.routes, r)
		if r.glob {
			t.globs = append(t.globs, r)
			t.listUpstream = true
		} else {
			t.exact[b.Name] = r
		}
	}
	t.globIndex = newGlobIndex(t.globs)
	return t, nil
}

func newUpstream(name, jurisdiction string, a *config.Account, p creds.Provider) (*Upstream, error) {
	up := &Upstream{Account: name, Jurisdiction: jurisdiction, Region: a.Region, Creds: p,
		BucketScoped: a.Credentials.BucketScoped(),
		DropExpect:   a.IsR2(),
		Source:       a.Credentials.Source()}
	endpoint := a.Endpoint
	if a.IsR2() {
		up.Host = config.R2Host(a.R2AccountID, jurisdiction)
		if endpoint == "" {
			endpoint = "https://" + up.Host
		}
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("account %s: endpoint: %w", name, err)
	}
	up.URL = &url.URL{Scheme: u.Scheme, Host: u.Host}
	if up.Host == "" {
		up.Host = u.Host
	}
	return up, nil
}

// Lookup returns the route for a bucket name, or nil: the exact route, else the first glob
// in config order that matches.
func (t *Table) Lookup(bucket string) *Route {
	if r, ok := t.exact[bucket]; ok {
		return r
	}
	if i := t.globIndex.first(t.globs, bucket); i >= 0 {
		return t.globs[i]
	}
	return nil
}

// globIndex finds the first matching glob without trying every one: globs are grouped by
// their literal prefix (what comes before the first '*', '?', '[' or '\\'), and a bucket
// name can only match globs whose prefix it starts with. A lookup tries one group per
// distinct prefix length, so its cost stays flat as routes like "tenant-123-*" grow from
// ten to ten thousand (BenchmarkLookup); only globs sharing one prefix are tried in turn.
type globIndex struct {
	byPrefix map[string][]int // indexes into the globs, ascending (config order)
	lens     []int            // the distinct prefix lengths, ascending
}

func newGlobIndex(globs []*Route) globIndex {
	x := globIndex{byPrefix: make(map[string][]int)}
	for i, r := range globs {
		p := literalPrefix(r.Pattern)
		if _, ok := x.byPrefix[p]; !ok && !slices.Contains(x.lens, len(p)) {
			x.lens = append(x.lens, len(p))
		}
		x.byPrefix[p] = append(x.byPrefix[p], i)
	}
	slices.Sort(x.lens)
	return x
}

// first returns the index of the first of globs matching bucket, or -1.
func (x *globIndex) first(globs []*Route, bucket string) int {
	best := -1
	for _, n := range x.lens {
		if n > len(bucket) {
			break
		}
		for _, i := range x.byPrefix[bucket[:n]] {
			if best >= 0 && i > best {
				break // an earlier glob already matched
			}
			if ok, _ := path.Match(globs[i].Pattern, bucket); ok {
				best = i
				break
			}
		}
	}
	return best
}

// literalPrefix is the part of a path.Match pattern before its first special character.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		return pattern[:i]
	}
	return pattern
}
