package creds

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestBudget(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type call struct {
		at        time.Duration // after t0
		refresh   bool
		wantAfter time.Duration // the RetryAfter expected; 0: the call is allowed
	}
	tests := []struct {
		name  string
		calls []call
		block time.Duration // block until t0+block first, when set
	}{
		{
			name: "others stop at calls minus reserve, refreshes go on to calls",
			calls: []call{
				{at: 0}, {at: time.Second},
				{at: 2 * time.Second, wantAfter: 58 * time.Second}, // the first call leaves the window at 60s
				{at: 2 * time.Second, refresh: true},
				{at: 3 * time.Second, refresh: true},
				{at: 4 * time.Second, refresh: true, wantAfter: 56 * time.Second},
			},
		},
		{
			name: "the window slides",
			calls: []call{
				{at: 0}, {at: time.Second},
				{at: 60 * time.Second}, // the call at 0 has left
				{at: 60 * time.Second, wantAfter: time.Second},
				{at: 61 * time.Second},
			},
		},
		{
			name:  "a 429 blocks every call, refreshes too, until its Retry-After",
			block: 5 * time.Minute,
			calls: []call{
				{at: 0, refresh: true, wantAfter: 5 * time.Minute},
				{at: time.Minute, wantAfter: 4 * time.Minute},
				{at: 5 * time.Minute},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBudget(BudgetLimits{Calls: 4, Window: time.Minute, Reserve: 2})
			if err != nil {
				t.Fatal(err)
			}
			if tt.block > 0 {
				b.block(t0.Add(tt.block))
			}
			for i, c := range tt.calls {
				err := b.take(t0.Add(c.at), c.refresh)
				be, _ := errors.AsType[*BudgetError](err)
				switch {
				case c.wantAfter == 0 && err != nil:
					t.Errorf("call %d at %s: %v, want allowed", i, c.at, err)
				case c.wantAfter != 0 && (be == nil || be.RetryAfter != c.wantAfter || !errors.Is(err, ErrBudget)):
					t.Errorf("call %d at %s: %v, want a BudgetError with RetryAfter %s", i, c.at, err, c.wantAfter)
				}
			}
		})
	}
	for _, l := range []BudgetLimits{{Calls: 0, Window: time.Minute}, {Calls: 4, Window: 0}, {Calls: 4, Window: time.Minute, Reserve: 4}} {
		if _, err := NewBudget(l); err == nil {
			t.Errorf("NewBudget(%+v): no error", l)
		}
	}
}

// ttlMinter is a testMinter that also mints with a lifetime of its own, recording it.
type ttlMinter struct {
	*testMinter
	ttls []time.Duration
}

func (m *ttlMinter) MintTTL(ctx context.Context, key Key, ttl time.Duration) (aws.Credentials, error) {
	m.mu.Lock()
	m.ttls = append(m.ttls, ttl)
	m.mu.Unlock()
	cr, err := m.Mint(ctx, key)
	cr.Expires = time.Now().Add(ttl)
	return cr, err
}

// TestCacheBudgetKeepsRefreshHeadroom: presigned URLs beyond the budget fail with a
// BudgetError while the background refresh of a credential in use goes on, so plain
// requests never lose their credential to a presign flood; presign credentials are reused
// while their remaining lifetime covers the URL's (issue 12 item 1).
func TestCacheBudgetKeepsRefreshHeadroom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &ttlMinter{testMinter: &testMinter{ttl: 3 * time.Minute}}
		c := newTestCache(t, m, withBudget(t, BudgetLimits{Calls: 10, Window: 5 * time.Minute, Reserve: 4}),
			func(o *CacheOptions) { o.RefreshJitter = -1 })
		live := testKey("live")
		if _, err := c.Retrieve(t.Context(), live); err != nil {
			t.Fatal(err)
		}
		// The same object presigned again while the credential covers the URL: one mint.
		obj := testKey("photos")
		obj.Objects = "cat.jpg"
		first, _, err := c.MintTTL(t.Context(), obj, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		again, _, err := c.MintTTL(t.Context(), obj, 2*time.Minute)
		if err != nil || again.AccessKeyID != first.AccessKeyID {
			t.Errorf("a second presign of the same object: %s, %v; want the first credential %s reused", again.AccessKeyID, err, first.AccessKeyID)
		}
		if m.ttls[0] < 2*time.Minute || m.ttls[0] > 2*time.Minute+30*time.Second {
			t.Errorf("presign credential minted for %s, want 2m to 2m30s", m.ttls[0])
		}
		if _, _, err := c.MintTTL(t.Context(), obj, time.Hour); err != nil {
			t.Errorf("a presign for longer than the credential held: %v, want a new mint", err)
		}
		// A flood of presigns for distinct objects: 6 calls are all it may spend.
		refused := 0
		for i := range 50 {
			k := testKey("photos")
			k.Objects = fmt.Sprintf("obj-%d", i)
			_, _, err := c.MintTTL(t.Context(), k, time.Minute)
			if be, ok := errors.AsType[*BudgetError](err); ok && be.RetryAfter > 0 {
				refused++
			} else if err != nil {
				t.Fatalf("presign %d: %v", i, err)
			}
		}
		if minted := m.count(); minted != 6 || refused != 47 {
			t.Errorf("after the flood: %d calls, %d presigns refused; want 6 calls and 47 refused", minted, refused)
		}
		// The live credential's refreshes (at 2/3 of its 2m usable life) still get calls,
		// and it never lapses.
		for range 5 * 6 { // 5 minutes, every 10s
			time.Sleep(10 * time.Second)
			if _, err := c.Retrieve(t.Context(), live); err != nil {
				t.Fatalf("Retrieve of the live key: %v", err)
			}
		}
		if n := len(m.callsFor("live")); n < 3 {
			t.Errorf("live key minted %d times in 5 minutes, want its refreshes (at least 3)", n)
		}
	})
}

// TestCacheMaxKeys: a glob route's made-up bucket names cannot grow the cache beyond
// MaxKeys: the key used least recently is dropped with its refresh goroutine, and a
// name whose mint fails is not retried in the background (issue 12 item 1).
func TestCacheMaxKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &testMinter{ttl: time.Hour}
		var failing atomic.Bool
		m.setFail(func(int) error {
			if failing.Load() {
				return errors.New("no such bucket")
			}
			return nil
		})
		c := newTestCache(t, m, func(o *CacheOptions) { o.MaxKeys = 3 })
		base := runtime.NumGoroutine()
		for i := range 10 {
			if _, err := c.Retrieve(t.Context(), testKey(fmt.Sprintf("made-up-%d", i))); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
		}
		synctest.Wait()
		st := c.Status()
		if len(st) != 3 || st[0].Key.Bucket != "made-up-7" {
			t.Errorf("held after 10 names with max_keys 3: %d keys from %v, want made-up-7..9", len(st), st[0].Key.Bucket)
		}
		if n := runtime.NumGoroutine() - base; n > 3 {
			t.Errorf("%d more goroutines than after the first key, want at most 2 (one refresh loop per held key)", n)
		}
		failing.Store(true)
		calls := m.count()
		for i := range 5 {
			if _, err := c.Retrieve(t.Context(), testKey(fmt.Sprintf("missing-%d", i))); err == nil {
				t.Fatal("a failing mint gave credentials")
			}
		}
		time.Sleep(24 * time.Hour)
		if n := m.count() - calls; n != 5 {
			t.Errorf("failing names were minted %d times in a day, want once each (5): no background mint loop", n)
		}
	})
}

// TestCacheRecoversPromptlyAfterOutage: after a 60 s outage of the credential API that
// outlasts the credential, requests get credentials within seconds of the API's recovery,
// not after a backoff sized for background refreshes (issue 12 item 9). Concurrent
// requests share each mint, and the mints are bounded.
func TestCacheRecoversPromptlyAfterOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &testMinter{ttl: 3 * time.Minute}
		c := newTestCache(t, m, func(o *CacheOptions) { o.SafetyMargin = 30 * time.Second })
		key := testKey("outage")
		if _, err := c.Retrieve(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		var down atomic.Bool
		m.setFail(func(int) error {
			if down.Load() {
				return &APIError{StatusCode: 503}
			}
			return nil
		})
		// The refresh is due at 1m40s; the outage runs from 1m to 5m, past the
		// credential's usable end at 2m30s, and a 10-request burst arrives every second.
		time.Sleep(time.Minute)
		down.Store(true)
		outageEnd := time.Now().Add(4 * time.Minute)
		var recoveredAt time.Time
		for time.Now().Before(outageEnd.Add(time.Minute)) {
			if !time.Now().Before(outageEnd) {
				down.Store(false)
			}
			var ok atomic.Int32
			var wg = make(chan struct{})
			for range 10 {
				go func() {
					if _, err := c.Retrieve(t.Context(), key); err == nil {
						ok.Add(1)
					}
					wg <- struct{}{}
				}()
			}
			for range 10 {
				<-wg
			}
			if ok.Load() == 10 && recoveredAt.IsZero() && !down.Load() {
				recoveredAt = time.Now()
			}
			time.Sleep(time.Second)
		}
		if recoveredAt.IsZero() {
			t.Fatal("requests never got credentials after the outage")
		}
		if lag := recoveredAt.Sub(outageEnd); lag > 12*time.Second {
			t.Errorf("requests got credentials %s after the API recovered, want within 12s", lag)
		}
		// Bounded: one mint at a time, spaced by the prompt backoff (at least ~1s).
		if n := m.count(); n > 4*60+20 {
			t.Errorf("%d mints during a 4-minute outage, want them bounded", n)
		}
	})
}

// TestCacheRefusedAndPrefetch: Status reports a credential upstream refused, even within
// the invalidation holdoff (readiness must see a revoked key), until a new one replaces
// it; Prefetch mints in the background without waiting (issue 12 item 13).
func TestCacheRefusedAndPrefetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		m := &testMinter{ttl: time.Hour}
		m.setGate(gate)
		c := newTestCache(t, m)
		key := testKey("ready")
		c.Prefetch(key) // returns at once, the mint held on the gate
		if st := c.Status(); len(st) != 1 || st[0].Valid {
			t.Fatalf("Status while minting: %+v", st)
		}
		close(gate)
		synctest.Wait()
		if st := c.Status(); !st[0].Valid || st[0].Refused {
			t.Fatalf("Status after the prefetch: %+v", st)
		}
		c.Invalidate(key) // within the holdoff: kept, but recorded
		if st := c.Status(); !st[0].Valid || !st[0].Refused {
			t.Errorf("Status after a refusal within the holdoff: %+v, want valid and refused", st)
		}
		time.Sleep(10 * time.Second)
		c.Invalidate(key) // dropped now
		if _, err := c.Retrieve(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		if st := c.Status(); !st[0].Valid || st[0].Refused {
			t.Errorf("Status after a new mint: %+v, want valid, not refused", st)
		}
	})
}
