package creds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/sync/singleflight"

	"github.com/signet-proxy/signet/config"
)

// Minter mints a fresh credential for a key each time it is called. It does not cache:
// wrap it in a [Cache]. [R2API] and [R2Local] implement it.
//
// Mint must honour ctx and must set Expires (with CanExpire) on credentials that expire.
// Errors name what failed without including any secret; an error that carries a server's
// Retry-After ([*APIError]) makes the [Cache] wait at least that long before the next try.
type Minter interface {
	Mint(ctx context.Context, key Key) (aws.Credentials, error)
}

// Invalidator is implemented by providers that can drop a credential that upstream refused
// (ExpiredToken, InvalidAccessKeyId), so that the next Retrieve for the key gets a new one.
// Find it by type assertion on a [Provider].
type Invalidator interface {
	Invalidate(key Key)
}

// TTLMinter is a [Minter] that can also mint with a lifetime chosen per call, for
// presigned URLs that must die with their credentials. [R2API] and [R2Local] implement it.
type TTLMinter interface {
	Minter
	MintTTL(ctx context.Context, key Key, ttl time.Duration) (aws.Credentials, error)
}

// MintTTL returns a credential for key that lives at least ttl, for a presigned URL, when
// the Cache's minter can mint with a lifetime of its own (a [TTLMinter]); ok is false when
// it cannot. With a [Budget] (an API minter), every such mint is a call the budget counts
// as low priority, so credentials are reused: one minted for the same key whose remaining
// lifetime covers ttl is returned again, and a mint asks for up to a quarter more than ttl
// (never past MaxR2TTL) so that the next URLs for the same object can reuse it. The URL's
// own expiry stays what was asked; a URL holder has no secret to sign anything else with.
// Beyond the budget it fails with a [*BudgetError].
func (c *Cache) MintTTL(ctx context.Context, key Key, ttl time.Duration) (cr aws.Credentials, ok bool, err error) {
	m, ok := c.minter.(TTLMinter)
	if !ok {
		return aws.Credentials{}, false, nil
	}
	if c.opts.Budget == nil {
		cr, err = m.MintTTL(ctx, key, ttl)
		if c.opts.OnMint != nil {
			c.opts.OnMint(key, err, 0)
		}
		return cr, true, err
	}
	now := c.opts.Now()
	c.mu.Lock()
	if p, held := c.presigned[key]; held && p.creds.Expires.Sub(now) >= ttl {
		p.used = now
		c.presigned[key] = p
		c.mu.Unlock()
		return p.creds, true, nil
	}
	c.mu.Unlock()
	if err := c.opts.Budget.take(now, false); err != nil {
		return aws.Credentials{}, true, fmt.Errorf("mint credentials for a presigned url on bucket %s: %w", key.Bucket, err)
	}
	life := min(ttl+(ttl/4).Truncate(time.Second), MaxR2TTL)
	start := c.opts.Now()
	cr, err = m.MintTTL(ctx, key, life)
	if c.opts.OnMint != nil {
		c.opts.OnMint(key, err, c.opts.Now().Sub(start))
	}
	if err != nil {
		c.noteRateLimit(err)
		return aws.Credentials{}, true, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return cr, true, nil
	}
	if len(c.presigned) >= c.opts.MaxKeys {
		c.dropPresignedLocked(now)
	}
	c.presigned[key] = presignedCreds{creds: cr, used: now}
	return cr, true, nil
}

// presignedCreds is a credential minted for presigned URLs, kept for reuse.
type presignedCreds struct {
	creds aws.Credentials
	used  time.Time // when it was minted or last handed out
}

// dropPresignedLocked makes room among the presign credentials: the expired ones go, or
// else the one minted longest ago. Needs mu.
func (c *Cache) dropPresignedLocked(now time.Time) {
	var oldest Key
	var oldestAt time.Time
	dropped := false
	for k, p := range c.presigned {
		if !p.creds.Expires.After(now) {
			delete(c.presigned, k)
			dropped = true
			continue
		}
		if oldestAt.IsZero() || p.used.Before(oldestAt) {
			oldest, oldestAt = k, p.used
		}
	}
	if !dropped && !oldestAt.IsZero() {
		delete(c.presigned, oldest)
	}
}

// noteRateLimit stops every call on the Budget until the API's Retry-After when err is a
// 429: Cloudflare blocks the token meanwhile, and each further call would extend the block.
func (c *Cache) noteRateLimit(err error) {
	if c.opts.Budget == nil {
		return
	}
	if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.StatusCode == http.StatusTooManyRequests {
		c.opts.Budget.block(c.opts.Now().Add(max(apiErr.RetryAfter, c.opts.MinBackoff)))
	}
}

// ErrClosed is returned by [Cache.Retrieve] after [Cache.Close].
var ErrClosed = errors.New("credentials cache closed")

// CacheOptions tunes a [Cache]. Zero values take the defaults.
type CacheOptions struct {
	// RefreshRatio is the fraction of a credential's usable lifetime (from mint to
	// SafetyMargin before expiry) after which it is re-minted in the background. Must be in
	// (0, 1). Default: `2/3`.
	RefreshRatio float64
	// RefreshJitter spreads refreshes of keys minted together: each refresh moves by up to
	// ±RefreshJitter × lifetime. At most 0.25; negative means none. Default: `0.05`.
	RefreshJitter float64
	// SafetyMargin is how long a credential must remain valid to be returned: it has to
	// outlast the longest request signed with it. Default: `1m`.
	SafetyMargin time.Duration
	// MintTimeout bounds one call to the minter. Default: `30s`.
	MintTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed mint. It doubles with each
	// consecutive failure, ±20% jitter; a longer Retry-After from the server wins.
	// Default: `1s` and `5m`.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// InvalidateHoldoff makes Invalidate ignore credentials minted less than this long ago:
	// a credential that fails straight after minting points at something a new mint will not
	// cure (propagation delay, a revoked parent), and minting for every failing request would
	// exhaust the Cloudflare API's rate limit. Negative means no holdoff. Default: `5s`.
	InvalidateHoldoff time.Duration
	// PromptMaxBackoff bounds the wait between mints that requests start while the key has
	// no valid credential: those retry promptly (doubling from MinBackoff, ±20% jitter, a
	// longer Retry-After or budget wait winning), so that signet recovers as soon as the API
	// does, while the background refresh of a valid credential backs off to MaxBackoff.
	// Default: `10s`.
	PromptMaxBackoff time.Duration
	// IdleLifetimes stops refreshing a key that no one has retrieved for this many lifetimes
	// of its last credential. Its credential is dropped and its next Retrieve mints
	// synchronously. Default: `3`.
	IdleLifetimes float64
	// MaxKeys caps the keys held at once (and, apart, the credentials kept for presigned
	// URLs): a glob route mints for whatever bucket names clients send. A new key beyond it
	// drops the key retrieved least recently, and that key's refresh. Default: `1024`.
	MaxKeys int
	// Budget, when set, counts the minter's API calls: refreshes of valid credentials may
	// use all of it, everything else (first mints, retries while nothing is held, presigned
	// URLs) only what its reserve leaves, and beyond that fails with a [*BudgetError]. A 429
	// from the API blocks it until the Retry-After. Default: nil (no budget: local minting).
	Budget *Budget
	// Budgets is the registry [FromConfig] takes an API token's Budget from, so that the
	// accounts sharing a token, and the accounts a reload sets up again, share its budget.
	// NewCache itself does not read it. Default: nil (each account its own).
	Budgets *Budgets
	// Now is the clock used for expiry decisions. Timers run on the runtime clock, so a Now
	// other than time.Now should advance with it. Default: time.Now.
	Now func() time.Time
	// Logger receives mint failures and recoveries. Default: discard.
	Logger *slog.Logger
	// OnMint, when set, is called after every mint attempt, successful (err == nil) or not,
	// from the goroutine that minted; took is the minter's own duration. It must not block
	// and must not call back into the Cache. Default: nil (no call).
	OnMint func(key Key, err error, took time.Duration)
}

// KeyStatus reports one key held by a [Cache], for readiness checks and metrics.
type KeyStatus struct {
	Key Key
	// Valid reports whether Retrieve would return a credential now.
	Valid bool
	// Expires is when the held credential expires; zero when none is held or it does not
	// expire.
	Expires time.Time
	// MintedAt is when the held credential was minted; zero when none is held.
	MintedAt time.Time
	// NextMint is when the next background mint is due; zero when none is scheduled.
	NextMint time.Time
	// Idle reports a key that no one retrieved for IdleLifetimes: it is not refreshed and
	// holds nothing, and its next Retrieve mints. Readiness checks should skip it.
	Idle bool
	// Failures counts consecutive failed mints; LastError is the latest (nil after a success).
	// A key that never minted is not retried in the background: its next Retrieve mints.
	Failures  int
	LastError error
	// Refused reports that upstream refused the credential held (Invalidate) within the
	// last minute and nothing has replaced it since: Valid as it may be, requests fail.
	Refused bool
}

// refusedFor is how long a refusal counts in KeyStatus.Refused. Refusals recur with every
// request signed with a revoked key, so it need not last; a credential refused once, by a
// request the upstream had some other reason to refuse, stops counting.
const refusedFor = time.Minute

// refusal records when upstream last refused a provider's credentials, and which of them:
// gen counts the credentials a provider has held (each new set is one more).
type refusal struct {
	at  time.Time // zero: never
	gen uint64
}

// counts reports whether the refusal is of the credentials of generation gen and recent
// enough at now.
func (r refusal) counts(gen uint64, now time.Time) bool {
	return !r.at.IsZero() && r.gen == gen && now.Sub(r.at) < refusedFor
}

// Cache is a [Provider] that holds one credential per [Key], minted by a [Minter].
//
// The first Retrieve for a key mints synchronously; concurrent first callers share that
// mint. After that, Retrieve never waits: each key has a goroutine that re-mints in the
// background at RefreshRatio of the credential's lifetime and, on failure, retries with
// exponential backoff while the old credential is served for as long as it stays valid
// beyond SafetyMargin. When nothing valid remains, Retrieve fails at once with an error
// wrapping [ErrNoCredentials] and the last mint error, until a mint succeeds.
//
// Close stops every goroutine the Cache started and waits for them.
type Cache struct {
	minter Minter
	opts   CacheOptions
	log    *slog.Logger
	stop   chan struct{} // closed by Close
	wg     sync.WaitGroup

	// mu guards entries, presigned, closed and the guarded fields of each entry. The read
	// lock serves the hot path (a valid credential); the write lock every change.
	mu        sync.RWMutex
	entries   map[Key]*cacheEntry
	presigned map[Key]presignedCreds // see MintTTL
	// evicted are entries dropped (MaxKeys) while a mint of theirs ran, for Close to wait
	// for; pruned of finished ones at each eviction.
	evicted []*cacheEntry
	closed  bool
}

var (
	_ Provider    = (*Cache)(nil)
	_ Invalidator = (*Cache)(nil)
)

// mintFlight is the singleflight key: each entry has its own group, so one key suffices.
const mintFlight = "mint"

// cacheEntry is the state of one key. Fields below the marker are guarded by Cache.mu.
type cacheEntry struct {
	key      Key
	sf       singleflight.Group
	wake     chan struct{} // cap 1: the schedule changed, the refresh loop recomputes
	lastUsed atomic.Int64  // UnixNano of the last Retrieve, per Cache.now

	// Guarded by Cache.mu.
	creds       aws.Credentials
	has         bool      // creds holds a minted credential
	mintedAt    time.Time // when the minter was called for creds
	refreshAt   time.Time // when creds is due for a background refresh; zero: never
	nextAttempt time.Time // after a failure, the earliest next background mint; zero otherwise
	promptAt    time.Time // after a failure, the earliest next mint a request may start
	failures    int
	lastErr     error
	gen         uint64  // counts the credentials minted
	refused     refusal // the last Invalidate
	looping     bool    // a refresh loop runs for this entry
	idle        bool    // the refresh loop stopped because no one retrieved the key
	removed     bool    // dropped from the Cache (MaxKeys): its loop ends
	minting     bool    // a mint started by startMintLocked has not returned yet
}

// NewCache returns a Cache over m. It starts no goroutine until the first Retrieve.
func NewCache(m Minter, optFns ...func(*CacheOptions)) (*Cache, error) {
	var o CacheOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if o.RefreshRatio == 0 {
		o.RefreshRatio = config.DefaultRefreshRatio
	}
	switch {
	case o.RefreshJitter == 0:
		o.RefreshJitter = 0.05
	case o.RefreshJitter < 0:
		o.RefreshJitter = 0
	}
	o.SafetyMargin = cmp.Or(o.SafetyMargin, config.DefaultSafetyMargin)
	o.MintTimeout = cmp.Or(o.MintTimeout, 30*time.Second)
	o.MinBackoff = cmp.Or(o.MinBackoff, time.Second)
	o.MaxBackoff = cmp.Or(o.MaxBackoff, 5*time.Minute)
	o.PromptMaxBackoff = cmp.Or(o.PromptMaxBackoff, 10*time.Second)
	o.MaxKeys = cmp.Or(o.MaxKeys, config.DefaultMaxKeys)
	o.InvalidateHoldoff = cmp.Or(o.InvalidateHoldoff, 5*time.Second)
	if o.IdleLifetimes == 0 {
		o.IdleLifetimes = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var errs []error
	if m == nil {
		errs = append(errs, errors.New("minter is nil"))
	}
	if !(o.RefreshRatio > 0 && o.RefreshRatio < 1) {
		errs = append(errs, fmt.Errorf("refresh ratio %v: must be between 0 and 1", o.RefreshRatio))
	}
	if !(o.RefreshJitter >= 0 && o.RefreshJitter <= 0.25) {
		errs = append(errs, fmt.Errorf("refresh jitter %v: must be between 0 and 0.25", o.RefreshJitter))
	}
	if o.MaxKeys < 1 {
		errs = append(errs, fmt.Errorf("max keys %d: must be at least 1", o.MaxKeys))
	}
	if o.SafetyMargin < 0 || o.MintTimeout < 0 || o.MinBackoff < 0 || o.MaxBackoff < 0 || o.PromptMaxBackoff < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if o.MinBackoff > o.MaxBackoff {
		errs = append(errs, fmt.Errorf("min backoff %s exceeds max backoff %s", o.MinBackoff, o.MaxBackoff))
	}
	if o.IdleLifetimes < 1 {
		errs = append(errs, fmt.Errorf("idle lifetimes %v: must be at least 1", o.IdleLifetimes))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("credentials cache options: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{
		minter:    m,
		opts:      o,
		log:       log,
		stop:      make(chan struct{}),
		entries:   make(map[Key]*cacheEntry),
		presigned: make(map[Key]presignedCreds),
	}, nil
}

// Retrieve returns the credential held for key, minting one first if none is held.
// It fails with an error wrapping [ErrNoCredentials] (and the last mint error, so
// errors.AsType[*APIError] works) when no credential valid beyond SafetyMargin is held and
// minting fails or is backing off; with ctx's error if ctx ends while it waits for a first
// mint (the mint itself goes on for the other callers); with [ErrClosed] after Close.
func (c *Cache) Retrieve(ctx context.Context, key Key) (aws.Credentials, error) {
	if err := ctx.Err(); err != nil {
		return aws.Credentials{}, err
	}
	now := c.opts.Now()
	c.mu.RLock()
	if e := c.entries[key]; e != nil && !c.closed {
		e.lastUsed.Store(now.UnixNano())
		if c.usable(e, now) {
			cr := e.creds
			c.mu.RUnlock()
			return cr, nil
		}
	}
	c.mu.RUnlock()
	return c.retrieveSlow(ctx, key)
}

// retrieveSlow handles everything but a valid held credential, under the write lock.
func (c *Cache) retrieveSlow(ctx context.Context, key Key) (aws.Credentials, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return aws.Credentials{}, ErrClosed
	}
	now := c.opts.Now()
	e := c.entryLocked(key)
	e.lastUsed.Store(now.UnixNano())
	if c.usable(e, now) {
		cr := e.creds
		c.mu.Unlock()
		return cr, nil
	}
	if now.Before(e.promptAt) {
		err := c.noCredentials(e, now, e.promptAt)
		c.mu.Unlock()
		return aws.Credentials{}, err
	}
	ch := c.startMintLocked(ctx, e)
	c.mu.Unlock()

	select {
	case r := <-ch:
		if r.Err != nil {
			return aws.Credentials{}, r.Err
		}
		return r.Val.(aws.Credentials), nil
	case <-ctx.Done():
		return aws.Credentials{}, fmt.Errorf("wait for credentials for bucket %s: %w", key.Bucket, ctx.Err())
	}
}

// entryLocked returns key's entry, adding it (and making room under MaxKeys) if there is
// none. Needs mu (write), with closed false.
func (c *Cache) entryLocked(key Key) *cacheEntry {
	if e := c.entries[key]; e != nil {
		return e
	}
	if len(c.entries) >= c.opts.MaxKeys {
		var oldest *cacheEntry
		for _, o := range c.entries {
			if oldest == nil || o.lastUsed.Load() < oldest.lastUsed.Load() {
				oldest = o
			}
		}
		delete(c.entries, oldest.key)
		oldest.removed = true
		poke(oldest.wake)
		c.evicted = slices.DeleteFunc(c.evicted, func(e *cacheEntry) bool { return !e.minting })
		if oldest.minting {
			c.evicted = append(c.evicted, oldest)
		}
		// Debug: on a glob route clients choose the names, and each new one evicts one.
		c.log.Debug("credential dropped: more keys than max_keys", "bucket", oldest.key.Bucket, "max_keys", c.opts.MaxKeys)
	}
	e := &cacheEntry{key: key, wake: make(chan struct{}, 1)}
	c.entries[key] = e
	return e
}

// Prefetch starts minting a credential for key in the background when none valid is held
// and none is being minted, and returns at once; Status shows the outcome. A readiness
// check uses it so as never to wait for a mint. It follows Retrieve's backoff.
func (c *Cache) Prefetch(key Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	now := c.opts.Now()
	e := c.entryLocked(key)
	if e.lastUsed.Load() == 0 {
		e.lastUsed.Store(now.UnixNano())
	}
	if c.usable(e, now) || now.Before(e.promptAt) {
		return
	}
	c.startMintLocked(context.Background(), e)
}

// Invalidate drops the credential held for key, so that the next Retrieve mints a new one
// (concurrent callers share that mint). It does nothing to a credential minted less than
// InvalidateHoldoff ago (but Status reports it Refused), and it does not cut short the
// backoff after a failed mint.
func (c *Cache) Invalidate(key Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || !e.has {
		return
	}
	// Recorded even within the holdoff: readiness must see a credential upstream refuses.
	e.refused = refusal{at: c.opts.Now(), gen: e.gen}
	if age := c.opts.Now().Sub(e.mintedAt); age < c.opts.InvalidateHoldoff {
		c.log.Debug("credential invalidation ignored: minted too recently",
			"bucket", key.Bucket, "age", age)
		return
	}
	e.creds, e.has, e.refreshAt = aws.Credentials{}, false, time.Time{}
	poke(e.wake)
	c.log.Info("credential invalidated", "bucket", key.Bucket)
}

// Status lists every key the Cache holds, sorted by bucket, then the rest of the key.
func (c *Cache) Status() []KeyStatus {
	c.mu.RLock()
	defer c.mu.RUnlock()
	now := c.opts.Now()
	out := make([]KeyStatus, 0, len(c.entries))
	for _, e := range c.entries {
		s := KeyStatus{
			Key:       e.key,
			Valid:     c.usable(e, now),
			Failures:  e.failures,
			LastError: e.lastErr,
			Idle:      e.idle,
			Refused:   e.has && e.refused.counts(e.gen, now),
		}
		if e.has {
			s.MintedAt = e.mintedAt
			if e.creds.CanExpire {
				s.Expires = e.creds.Expires
			}
		}
		if e.looping {
			s.NextMint = c.mintAt(e)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b KeyStatus) int { return compareKeys(a.Key, b.Key) })
	return out
}

// Close stops the refresh goroutines, cancels mints in flight and waits for all of them,
// then closes the minter's idle connections when it has any (an [R2API]). Retrieve fails with [ErrClosed] afterwards. Close is idempotent and returns nil.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	entries := make([]*cacheEntry, 0, len(c.entries)+len(c.evicted))
	for _, e := range c.entries {
		entries = append(entries, e)
	}
	entries = append(entries, c.evicted...)
	c.mu.Unlock()

	close(c.stop)
	c.wg.Wait()
	// Mints run on singleflight's goroutines. No new one can start once closed is set
	// (startMintLocked runs under mu), and one in flight stays registered in its group until
	// it returns, so joining each group waits for it; stop has cancelled its context.
	for _, e := range entries {
		e.sf.Do(mintFlight, func() (any, error) { return nil, nil })
	}
	// An API minter's client keeps idle connections (and their goroutines) for its
	// IdleConnTimeout: a reload that replaces the account must not leave them behind.
	if ic, ok := c.minter.(interface{ CloseIdleConnections() }); ok {
		ic.CloseIdleConnections()
	}
	return nil
}

// usable reports whether e holds a credential valid beyond SafetyMargin. Needs mu (read).
func (c *Cache) usable(e *cacheEntry, now time.Time) bool {
	if !e.has {
		return false
	}
	return !e.creds.CanExpire || e.creds.Expires.Sub(now) > c.opts.SafetyMargin
}

// noCredentials explains why e has nothing to give before next. Needs mu (read).
func (c *Cache) noCredentials(e *cacheEntry, now, next time.Time) error {
	wait := next.Sub(now).Round(time.Millisecond)
	what := " for bucket " + e.key.Bucket
	if e.key.Bucket == "" {
		what = "" // one credential for the whole account (AccountCache)
	}
	if e.lastErr == nil {
		return fmt.Errorf("%w%s: next mint in %s", ErrNoCredentials, what, wait)
	}
	return fmt.Errorf("%w%s (%d failed mints, next in %s): %w",
		ErrNoCredentials, what, e.failures, wait, e.lastErr)
}

// startMintLocked starts a mint for e, or joins the one in flight. Needs mu (write)
// with closed false, which is what lets Close wait for mints.
func (c *Cache) startMintLocked(ctx context.Context, e *cacheEntry) <-chan singleflight.Result {
	// The mint must outlive the caller that started it: the others share it.
	mintCtx := context.WithoutCancel(ctx)
	e.minting = true
	return e.sf.DoChan(mintFlight, func() (any, error) {
		defer func() { // the very end of the flight's own work
			c.mu.Lock()
			e.minting = false
			c.mu.Unlock()
		}()
		return c.mint(mintCtx, e)
	})
}

// mint calls the minter once, within the budget, and records the outcome in e.
func (c *Cache) mint(ctx context.Context, e *cacheEntry) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.MintTimeout)
	defer cancel()
	go func() { // ends when mint returns (cancel) or Close stops the cache
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()

	start := c.opts.Now()
	var err error
	if b := c.opts.Budget; b != nil {
		// Refreshing the credential of a key in use (it has minted and not gone idle, even if
		// an outage let its credential lapse) may spend the reserve; nothing else may.
		c.mu.RLock()
		refresh := e.gen > 0 && !e.idle
		c.mu.RUnlock()
		err = b.take(start, refresh)
	}
	var cr aws.Credentials
	var took time.Duration
	called := err == nil
	if called {
		cr, err = c.minter.Mint(ctx, e.key)
		took = c.opts.Now().Sub(start)
		if err == nil {
			err = c.checkMinted(cr, start)
		}
		c.noteRateLimit(err)
	}

	c.mu.Lock()
	now := c.opts.Now()
	var wait time.Duration
	recovered := false
	if err != nil {
		e.failures++
		e.lastErr = err
		wait = c.backoff(e.failures, err, c.opts.MaxBackoff)
		e.nextAttempt = now.Add(wait)
		e.promptAt = now.Add(c.backoff(e.failures, err, c.opts.PromptMaxBackoff))
	} else {
		recovered = e.failures > 0
		e.creds, e.has, e.mintedAt = cr, true, start
		e.gen++
		e.failures, e.lastErr, e.nextAttempt, e.promptAt = 0, nil, time.Time{}, time.Time{}
		e.refreshAt = c.refreshTime(cr, start)
		// The refresh loop starts with the first credential: a key whose mints fail (a
		// bucket that does not exist, say) is retried only by the requests that want it.
		if !e.looping && !e.removed && !c.closed {
			e.looping, e.idle = true, false
			c.wg.Add(1)
			go c.refreshLoop(e)
		}
	}
	failures := e.failures
	var outErr error
	if err != nil {
		outErr = c.noCredentials(e, now, e.promptAt)
	}
	c.mu.Unlock()
	poke(e.wake)

	switch {
	case err != nil:
		c.log.Warn("mint credentials", "bucket", e.key.Bucket, "error", err,
			"failures", failures, "retry_in", wait)
	case recovered:
		c.log.Info("mint credentials recovered", "bucket", e.key.Bucket, "expires", cr.Expires)
	}
	if c.opts.OnMint != nil && called {
		c.opts.OnMint(e.key, err, took)
	}
	if err != nil {
		return nil, outErr
	}
	return cr, nil
}

// checkMinted rejects credentials the cache could not serve.
func (c *Cache) checkMinted(cr aws.Credentials, start time.Time) error {
	if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
		return errors.New("minter returned empty credentials")
	}
	if cr.CanExpire && cr.Expires.Sub(start) <= c.opts.SafetyMargin {
		return fmt.Errorf("minted credentials live %s, not beyond the safety margin %s",
			cr.Expires.Sub(start), c.opts.SafetyMargin)
	}
	return nil
}

// refreshTime places the next background mint at RefreshRatio of the usable lifetime,
// give or take RefreshJitter of the whole lifetime.
func (c *Cache) refreshTime(cr aws.Credentials, mintedAt time.Time) time.Time {
	if !cr.CanExpire {
		return time.Time{}
	}
	lifetime := cr.Expires.Sub(mintedAt)
	usable := lifetime - c.opts.SafetyMargin
	jitter := (2*rand.Float64() - 1) * c.opts.RefreshJitter * float64(lifetime)
	d := time.Duration(c.opts.RefreshRatio*float64(usable) + jitter)
	// Never sooner than MinBackoff: a minter handing out barely-usable credentials must not
	// turn this loop into a busy one.
	d = max(min(max(d, 0), usable), c.opts.MinBackoff)
	return mintedAt.Add(d)
}

// backoff is the wait after the n-th consecutive failure: doubling from MinBackoff up to
// limit, ±20% jitter, and at least what the server's Retry-After or the budget asks.
func (c *Cache) backoff(n int, err error, limit time.Duration) time.Duration {
	d := c.opts.MinBackoff
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	d = min(d, limit)
	if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.RetryAfter > d {
		d = apiErr.RetryAfter
	}
	if be, ok := errors.AsType[*BudgetError](err); ok && be.RetryAfter > d {
		d = be.RetryAfter
	}
	return d
}

// mintAt is when e's refresh loop next mints; zero when nothing is scheduled. Needs mu.
func (c *Cache) mintAt(e *cacheEntry) time.Time {
	switch {
	case e.has && !e.refreshAt.IsZero():
		if e.nextAttempt.After(e.refreshAt) {
			return e.nextAttempt // refresh failed: retry after the backoff
		}
		return e.refreshAt
	default:
		// Long-lived, invalidated, or nothing held and minting fails: the next Retrieve
		// mints. Background retries of a key with nothing to serve would be a mint loop for
		// bucket names a client made up.
		return time.Time{}
	}
}

// idleAt is when e counts as idle; zero for a credential that never expires. Needs mu.
func (c *Cache) idleAt(e *cacheEntry) time.Time {
	var lifetime time.Duration
	switch {
	case e.has && e.creds.CanExpire:
		lifetime = e.creds.Expires.Sub(e.mintedAt)
	case e.has:
		return time.Time{}
	default:
		lifetime = c.opts.MaxBackoff // invalidated: wait for the next Retrieve a while
	}
	last := time.Unix(0, e.lastUsed.Load())
	return last.Add(time.Duration(c.opts.IdleLifetimes * float64(lifetime)))
}

// refreshLoop re-mints e's credential in the background until Close, or until the key
// goes idle (the next Retrieve restarts it).
func (c *Cache) refreshLoop(e *cacheEntry) {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		if e.removed {
			e.looping = false
			c.mu.Unlock()
			return
		}
		now := c.opts.Now()
		idle := c.idleAt(e)
		if !idle.IsZero() && !idle.After(now) {
			e.looping, e.idle = false, true
			e.creds, e.has, e.refreshAt = aws.Credentials{}, false, time.Time{}
			c.mu.Unlock()
			c.log.Debug("stop refreshing idle credential", "bucket", e.key.Bucket)
			return
		}
		at := c.mintAt(e)
		if !at.IsZero() && !at.After(now) {
			ch := c.startMintLocked(context.Background(), e)
			c.mu.Unlock()
			select {
			case <-ch:
			case <-c.stop:
				return
			}
			continue
		}
		c.mu.Unlock()

		var fire <-chan time.Time
		if next := earliest(at, idle); !next.IsZero() {
			timer.Reset(next.Sub(now))
			fire = timer.C
		}
		select {
		case <-c.stop:
			return
		case <-e.wake:
		case <-fire:
		}
		timer.Stop()
	}
}

// earliest is the earlier of two times, zero meaning "never".
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	default:
		return b
	}
}

// poke signals ch without blocking; one pending signal is enough.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func compareKeys(a, b Key) int {
	return cmp.Or(
		cmp.Compare(a.Bucket, b.Bucket),
		cmp.Compare(a.Jurisdiction, b.Jurisdiction),
		cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Permission, b.Permission),
		cmp.Compare(a.Prefixes, b.Prefixes),
		cmp.Compare(a.Objects, b.Objects),
		cmp.Compare(a.Actions, b.Actions),
	)
}
