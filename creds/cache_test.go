package creds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// testMinter is an in-process Minter for tests under synctest: it counts and times its
// calls, can fail, can be held on a gate, and takes delay (virtual time) per mint.
type testMinter struct {
	ttl   time.Duration
	delay time.Duration

	mu    sync.Mutex
	calls []time.Time
	keys  []Key
	fail  func(n int) error // decides whether call n (1-based) fails
	gate  chan struct{}     // when set, Mint waits for it to close (or ctx)
}

func (m *testMinter) Mint(ctx context.Context, key Key) (aws.Credentials, error) {
	m.mu.Lock()
	m.calls = append(m.calls, time.Now())
	m.keys = append(m.keys, key)
	n, fail, gate := len(m.calls), m.fail, m.gate
	m.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return aws.Credentials{}, ctx.Err()
		}
	}
	if m.delay > 0 {
		time.Sleep(m.delay) // virtual time: inside a synctest bubble
	}
	if fail != nil {
		if err := fail(n); err != nil {
			return aws.Credentials{}, err
		}
	}
	return aws.Credentials{
		AccessKeyID:     fmt.Sprintf("AK-%s-%d", key.Bucket, n),
		SecretAccessKey: fmt.Sprintf("SECRET-%s-%d", key.Bucket, n),
		SessionToken:    fmt.Sprintf("TOKEN-%s-%d", key.Bucket, n),
		Source:          "test",
		CanExpire:       true,
		Expires:         time.Now().Add(m.ttl),
	}, nil
}

func (m *testMinter) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

// callsFor returns the times of the calls for bucket.
func (m *testMinter) callsFor(bucket string) []time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []time.Time
	for i, k := range m.keys {
		if k.Bucket == bucket {
			out = append(out, m.calls[i])
		}
	}
	return out
}

func (m *testMinter) setFail(fn func(n int) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = fn
}

func (m *testMinter) setGate(gate chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gate = gate
}

func newTestCache(t *testing.T, m Minter, optFns ...func(*CacheOptions)) *Cache {
	t.Helper()
	c, err := NewCache(m, optFns...)
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// withBudget gives a Cache a Budget of its own.
func withBudget(t *testing.T, l BudgetLimits) func(*CacheOptions) {
	t.Helper()
	b, err := NewBudget(l)
	if err != nil {
		t.Fatal(err)
	}
	return func(o *CacheOptions) { o.Budget = b }
}

func testKey(bucket string) Key {
	return Key{Bucket: bucket, Host: "acct.r2.cloudflarestorage.com", Permission: PermObjectReadWrite}
}

func TestCacheSharesFirstMint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		m := &testMinter{ttl: time.Hour, gate: gate}
		c := newTestCache(t, m)
		key := testKey("shared")

		const callers = 32
		got := make([]aws.Credentials, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { got[i], errs[i] = c.Retrieve(t.Context(), key) })
		}
		synctest.Wait() // every caller is waiting for the one mint
		if n := m.count(); n != 1 {
			t.Fatalf("mints while %d callers wait = %d, want 1", callers, n)
		}
		close(gate)
		wg.Wait()
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if got[i].AccessKeyID != "AK-shared-1" {
				t.Errorf("caller %d got %s, want AK-shared-1", i, got[i].AccessKeyID)
			}
		}
		if n := m.count(); n != 1 {
			t.Errorf("mints = %d, want 1", n)
		}
	})
}

func TestCacheRefreshesOncePerLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = time.Minute
		m := &testMinter{ttl: ttl}
		var hookMu sync.Mutex
		hookMints := map[string]int{}
		c := newTestCache(t, m, func(o *CacheOptions) {
			o.SafetyMargin = time.Second
			o.OnMint = func(key Key, err error, took time.Duration) {
				hookMu.Lock()
				defer hookMu.Unlock()
				if err == nil {
					hookMints[key.Bucket]++
				}
			}
		})
		buckets := []string{"a", "b", "c"}
		start := time.Now()
		retrieves := 0
		for time.Since(start) < 10*time.Minute {
			for _, b := range buckets {
				cr, err := c.Retrieve(t.Context(), testKey(b))
				if err != nil {
					t.Fatalf("Retrieve(%s) at %s: %v", b, time.Since(start), err)
				}
				if left := time.Until(cr.Expires); left <= time.Second {
					t.Fatalf("Retrieve(%s) returned a credential with %s left", b, left)
				}
				retrieves++
			}
			time.Sleep(100 * time.Millisecond)
		}

		// Usable lifetime 59s, refresh at 2/3 of it (39.3s) ± 5% of 60s.
		lo, hi := 36*time.Second, 43*time.Second
		for _, b := range buckets {
			calls := m.callsFor(b)
			if len(calls) < 14 || len(calls) > 17 {
				t.Errorf("bucket %s: %d mints in 10m of %d retrieves, want about 15", b, len(calls), retrieves)
			}
			for i := 1; i < len(calls); i++ {
				if gap := calls[i].Sub(calls[i-1]); gap < lo || gap > hi {
					t.Errorf("bucket %s: refresh %d came %s after the previous mint, want %s..%s", b, i, gap, lo, hi)
				}
			}
			hookMu.Lock()
			if hookMints[b] != len(calls) {
				t.Errorf("bucket %s: OnMint saw %d mints, minter %d", b, hookMints[b], len(calls))
			}
			hookMu.Unlock()
		}

		// Jitter: keys minted together do not refresh together.
		if a, b := m.callsFor("a"), m.callsFor("b"); len(a) > 1 && len(b) > 1 && a[1].Equal(b[1]) {
			t.Errorf("buckets a and b refreshed at the same instant %s", a[1])
		}

		st := c.Status()
		if len(st) != len(buckets) {
			t.Fatalf("Status has %d keys, want %d", len(st), len(buckets))
		}
		for i, s := range st {
			if s.Key.Bucket != buckets[i] || !s.Valid || s.Expires.IsZero() || s.Failures != 0 || s.LastError != nil {
				t.Errorf("Status[%d] = %+v", i, s)
			}
			if !s.NextMint.After(time.Now()) || !s.NextMint.Before(s.Expires) {
				t.Errorf("Status[%d].NextMint = %s, want between now and expiry %s", i, s.NextMint, s.Expires)
			}
		}
	})
}

func TestCacheContinuousUseNeverServesExpiring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			ttl    = 20 * time.Second
			margin = 2 * time.Second
		)
		m := &testMinter{ttl: ttl, delay: 300 * time.Millisecond}
		c := newTestCache(t, m, func(o *CacheOptions) { o.SafetyMargin = margin })
		key := testKey("busy")
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		retrieves := 0
		for g := range 32 {
			wg.Go(func() {
				time.Sleep(time.Duration(g) * time.Millisecond)
				for time.Since(start) < 3*ttl+10*time.Second {
					cr, err := c.Retrieve(t.Context(), key)
					mu.Lock()
					retrieves++
					switch {
					case err != nil:
						failures = append(failures, fmt.Sprintf("at %s: %v", time.Since(start), err))
					case time.Until(cr.Expires) <= margin:
						failures = append(failures, fmt.Sprintf("at %s: credential expiring in %s", time.Since(start), time.Until(cr.Expires)))
					}
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%d of %d retrieves failed, first: %s", len(failures), retrieves, failures[0])
		}
		// 70s at one mint per ~12s (2/3 of 18s usable).
		if n := m.count(); n < 5 || n > 8 {
			t.Errorf("mints = %d over %d retrieves, want 5..8", n, retrieves)
		}
	})
}

func TestCacheMintFailuresBackOffAndRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			ttl    = time.Minute
			margin = 5 * time.Second
		)
		m := &testMinter{ttl: ttl}
		c := newTestCache(t, m, func(o *CacheOptions) {
			o.SafetyMargin = margin
			o.MaxBackoff = 30 * time.Second
		})
		key := testKey("flaky")
		start := time.Now()
		first, err := c.Retrieve(t.Context(), key)
		if err != nil {
			t.Fatalf("first Retrieve: %v", err)
		}

		var recoveredMu sync.Mutex
		recovered := false
		m.setFail(func(n int) error {
			recoveredMu.Lock()
			defer recoveredMu.Unlock()
			if recovered {
				return nil
			}
			return errors.New("upstream boom")
		})

		// The old credential serves for as long as it is valid beyond the margin.
		for time.Since(start) < ttl-margin-100*time.Millisecond {
			cr, err := c.Retrieve(t.Context(), key)
			if err != nil {
				t.Fatalf("Retrieve at %s: %v", time.Since(start), err)
			}
			if cr.AccessKeyID != first.AccessKeyID {
				t.Fatalf("Retrieve at %s got %s, want the old %s", time.Since(start), cr.AccessKeyID, first.AccessKeyID)
			}
			time.Sleep(100 * time.Millisecond)
		}

		// Refresh at ~2/3 of 55s, then retries 1s, 2s, 4s, 8s... apart (±20%).
		calls := m.callsFor("flaky")
		if len(calls) < 5 {
			t.Fatalf("mint attempts by %s = %d, want at least 5 (mint, refresh, 3 retries)", time.Since(start), len(calls))
		}
		for i := 2; i < len(calls); i++ {
			want := time.Second << (i - 2)
			gap := calls[i].Sub(calls[i-1])
			if gap < want*8/10 || gap > want*12/10 {
				t.Errorf("retry %d came %s after the previous attempt, want %s ±20%%", i-1, gap, want)
			}
		}

		// Nothing valid beyond the margin: fail fast, naming the bucket and the last error.
		time.Sleep(time.Second)
		attempts := m.count()
		_, err = c.Retrieve(t.Context(), key)
		if !errors.Is(err, ErrNoCredentials) {
			t.Fatalf("Retrieve after expiry: err = %v, want ErrNoCredentials", err)
		}
		for _, want := range []string{"flaky", "upstream boom"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
		for _, secret := range []string{first.SecretAccessKey, first.SessionToken} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q holds a secret", err)
			}
		}
		if n := m.count(); n != attempts {
			t.Errorf("a Retrieve during backoff minted: %d attempts, want %d", n, attempts)
		}
		st := c.Status()
		if len(st) != 1 || st[0].Valid || st[0].Failures != attempts-1 || st[0].LastError == nil {
			t.Errorf("Status = %+v, want invalid with %d failures", st, attempts-1)
		}

		recoveredMu.Lock()
		recovered = true
		recoveredMu.Unlock()
		// The next retry (at most 16s+20% after the last failure) succeeds in the background.
		time.Sleep(30 * time.Second)
		cr, err := c.Retrieve(t.Context(), key)
		if err != nil {
			t.Fatalf("Retrieve after recovery: %v", err)
		}
		if cr.AccessKeyID == first.AccessKeyID || time.Until(cr.Expires) <= margin {
			t.Errorf("after recovery got %s expiring in %s", cr.AccessKeyID, time.Until(cr.Expires))
		}
		if st := c.Status(); !st[0].Valid || st[0].Failures != 0 || st[0].LastError != nil {
			t.Errorf("Status after recovery = %+v", st)
		}
	})
}

func TestCacheHonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &testMinter{ttl: 10 * time.Minute}
		c := newTestCache(t, m)
		key := testKey("limited")
		if _, err := c.Retrieve(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		m.setFail(func(n int) error {
			if n == 2 {
				return fmt.Errorf("mint r2 credentials for limited: %w",
					&APIError{StatusCode: 429, RetryAfter: 45 * time.Second})
			}
			return nil
		})
		time.Sleep(9 * time.Minute)
		calls := m.callsFor("limited")
		if len(calls) < 3 {
			t.Fatalf("attempts = %d, want the refresh, its retry, and more", len(calls))
		}
		if gap := calls[2].Sub(calls[1]); gap < 45*time.Second || gap > 46*time.Second {
			t.Errorf("retry after a 429 with Retry-After 45s came %s later", gap)
		}
	})
}

func TestCacheFirstMintFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &testMinter{ttl: time.Hour}
		m.setFail(func(n int) error {
			if n == 1 {
				return fmt.Errorf("mint r2 credentials for cold: %w",
					&APIError{StatusCode: 503, Errors: []APIMessage{{Code: 10000, Message: "try later"}}})
			}
			return nil
		})
		c := newTestCache(t, m)
		key := testKey("cold")
		_, err := c.Retrieve(t.Context(), key)
		if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "cold") {
			t.Fatalf("first Retrieve: err = %v, want ErrNoCredentials naming the bucket", err)
		}
		if apiErr, ok := errors.AsType[*APIError](err); !ok || apiErr.StatusCode != 503 {
			t.Errorf("first Retrieve: err = %v, want it to wrap the *APIError", err)
		}
		// During the backoff, Retrieve fails at once without minting.
		if _, err := c.Retrieve(t.Context(), key); !errors.Is(err, ErrNoCredentials) {
			t.Errorf("second Retrieve: err = %v, want ErrNoCredentials", err)
		}
		if n := m.count(); n != 1 {
			t.Errorf("mints after two Retrieves = %d, want 1", n)
		}
		// A key that never minted is not retried in the background (a bucket name a
		// client made up must not cause a mint loop): the next Retrieve after the backoff
		// mints, and then Retrieve returns without minting.
		time.Sleep(2 * time.Second)
		if n := m.count(); n != 1 {
			t.Fatalf("mints after the backoff with no Retrieve = %d, want 1", n)
		}
		if _, err := c.Retrieve(t.Context(), key); err != nil {
			t.Errorf("Retrieve after the backoff: %v", err)
		}
		if _, err := c.Retrieve(t.Context(), key); err != nil {
			t.Errorf("Retrieve after the mint: %v", err)
		}
		if n := m.count(); n != 2 {
			t.Errorf("mints = %d, want 2", n)
		}
	})
}

func TestCacheInvalidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &testMinter{ttl: time.Hour}
		c := newTestCache(t, m)
		key := testKey("revoked")
		first, err := c.Retrieve(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}

		// Within the holdoff, Invalidate keeps the credential.
		c.Invalidate(key)
		if cr, err := c.Retrieve(t.Context(), key); err != nil || cr.AccessKeyID != first.AccessKeyID {
			t.Fatalf("Retrieve after an early Invalidate = %s, %v; want the same credential", cr.AccessKeyID, err)
		}
		c.Invalidate(testKey("unknown")) // no such key: no effect

		time.Sleep(10 * time.Second)
		gate := make(chan struct{})
		m.setGate(gate)
		c.Invalidate(key)
		const callers = 32
		got := make([]aws.Credentials, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { got[i], errs[i] = c.Retrieve(t.Context(), key) })
		}
		synctest.Wait()
		if n := m.count(); n != 2 {
			t.Fatalf("mints while callers wait after Invalidate = %d, want 2", n)
		}
		close(gate)
		wg.Wait()
		for i := range callers {
			if errs[i] != nil || got[i].AccessKeyID != "AK-revoked-2" {
				t.Errorf("caller %d: %s, %v; want AK-revoked-2", i, got[i].AccessKeyID, errs[i])
			}
		}
		if n := m.count(); n != 2 {
			t.Errorf("mints = %d, want 2", n)
		}
	})
}

func TestCacheWaiterCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		m := &testMinter{ttl: time.Hour, gate: gate}
		c := newTestCache(t, m)
		key := testKey("slow")

		ctx, cancel := context.WithCancel(t.Context())
		var errA, errB error
		var credB aws.Credentials
		var wg sync.WaitGroup
		wg.Go(func() { _, errA = c.Retrieve(ctx, key) })
		wg.Go(func() { credB, errB = c.Retrieve(t.Context(), key) })
		synctest.Wait()
		cancel()
		synctest.Wait() // A returns; B still waits on the mint A started
		if !errors.Is(errA, context.Canceled) {
			t.Errorf("cancelled caller: err = %v, want context.Canceled", errA)
		}
		close(gate)
		wg.Wait()
		if errB != nil || credB.AccessKeyID != "AK-slow-1" {
			t.Errorf("other caller: %s, %v; want AK-slow-1", credB.AccessKeyID, errB)
		}
	})
}

func TestCacheIdleKeyStopsRefreshing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &testMinter{ttl: time.Minute}
		c := newTestCache(t, m, func(o *CacheOptions) { o.SafetyMargin = time.Second })
		key := testKey("quiet")
		if _, err := c.Retrieve(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		// Idle after 3 lifetimes (180s): refreshes at ~39s, 79s, 118s, 157s, then it stops.
		time.Sleep(5 * time.Minute)
		n := m.count()
		if n < 4 || n > 6 {
			t.Errorf("mints during the idle 5m = %d, want 4..6", n)
		}
		time.Sleep(10 * time.Minute)
		if m.count() != n {
			t.Errorf("an idle key kept being refreshed: %d mints, then %d", n, m.count())
		}
		if st := c.Status(); len(st) != 1 || !st[0].Idle || st[0].Valid {
			t.Errorf("Status of the idle key = %+v", st)
		}
		cr, err := c.Retrieve(t.Context(), key)
		if err != nil || time.Until(cr.Expires) < 59*time.Second {
			t.Fatalf("Retrieve after idling = %v (expires in %s); want a fresh credential", err, time.Until(cr.Expires))
		}
		if m.count() != n+1 {
			t.Errorf("mints = %d, want %d", m.count(), n+1)
		}
		if st := c.Status(); st[0].Idle || !st[0].Valid {
			t.Errorf("Status after use = %+v", st)
		}
	})
}

func TestCacheClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &testMinter{ttl: time.Hour}
		c := newTestCache(t, m)
		for _, b := range []string{"x", "y"} {
			if _, err := c.Retrieve(t.Context(), testKey(b)); err != nil {
				t.Fatal(err)
			}
		}
		// A first mint in flight when Close is called is cancelled and waited for.
		m.setGate(make(chan struct{}))
		var waitErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, waitErr = c.Retrieve(t.Context(), testKey("z"))
		}()
		synctest.Wait()
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		<-done
		if !errors.Is(waitErr, ErrNoCredentials) || !errors.Is(waitErr, context.Canceled) {
			t.Errorf("Retrieve cut by Close: err = %v", waitErr)
		}
		if _, err := c.Retrieve(t.Context(), testKey("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Retrieve after Close: err = %v, want ErrClosed", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		// synctest.Test fails if any goroutine of the cache outlives this function.
	})
}

func TestNewCacheOptions(t *testing.T) {
	tests := []struct {
		name    string
		minter  Minter
		opt     func(*CacheOptions)
		wantErr string
	}{
		{name: "defaults", minter: &testMinter{}, opt: func(*CacheOptions) {}},
		{name: "nil minter", opt: func(*CacheOptions) {}, wantErr: "minter is nil"},
		{name: "ratio 1", minter: &testMinter{}, opt: func(o *CacheOptions) { o.RefreshRatio = 1 }, wantErr: "refresh ratio"},
		{name: "negative ratio", minter: &testMinter{}, opt: func(o *CacheOptions) { o.RefreshRatio = -0.5 }, wantErr: "refresh ratio"},
		{name: "jitter too big", minter: &testMinter{}, opt: func(o *CacheOptions) { o.RefreshJitter = 0.5 }, wantErr: "refresh jitter"},
		{name: "backoff order", minter: &testMinter{}, opt: func(o *CacheOptions) { o.MinBackoff = time.Hour }, wantErr: "min backoff"},
		{name: "negative margin", minter: &testMinter{}, opt: func(o *CacheOptions) { o.SafetyMargin = -time.Second }, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCache(tt.minter, tt.opt)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewCache: %v", err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewCache: err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func BenchmarkCacheRetrieve(b *testing.B) {
	c, err := NewCache(&testMinter{ttl: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	key := testKey("bench")
	if _, err := c.Retrieve(b.Context(), key); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Retrieve(context.Background(), key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
