package creds

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBudget is wrapped by [*BudgetError]: signet's own budget of API calls for a token is
// spent, or the API told it to wait (429 with Retry-After).
var ErrBudget = errors.New("cloudflare api call budget spent")

// BudgetError is a mint refused before calling the API because the token's budget is spent.
// A proxy answers 503 SlowDown with Retry-After. It wraps [ErrBudget].
type BudgetError struct {
	// RetryAfter is when a call of the same kind may be made again, from the refusal.
	RetryAfter time.Duration
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("%v; retry after %s", ErrBudget, e.RetryAfter.Round(time.Second))
}

func (e *BudgetError) Unwrap() error { return ErrBudget }

// Budget counts the API calls made with one API token in a sliding window, so that signet
// stays under Cloudflare's rate limit (1200 calls in 5 minutes per user; going over blocks
// every call for 5 minutes) and refreshes of credentials in use always have headroom: the
// last Reserve calls of the window are for them alone. Every [Cache] minting with the
// token shares it (see [Budgets]). It is safe for concurrent use.
type Budget struct {
	mu      sync.Mutex
	limit   BudgetLimits
	calls   []time.Time // the calls made within the window, oldest first
	blocked time.Time   // the API said to wait until then (429 Retry-After)
}

// BudgetLimits are a [Budget]'s settings; the config's r2_temp_api api_budget,
// api_budget_window and api_refresh_reserve.
type BudgetLimits struct {
	// Calls is how many calls may be made per Window.
	Calls  int
	Window time.Duration
	// Reserve is the part of Calls that only refreshes of credentials in use may spend.
	Reserve int
}

// NewBudget returns a Budget with the given limits.
func NewBudget(l BudgetLimits) (*Budget, error) {
	if l.Calls < 1 || l.Window <= 0 || l.Reserve < 0 || l.Reserve >= l.Calls {
		return nil, fmt.Errorf("api budget %d calls per %s with %d reserved: calls and window must be positive, the reserve below calls", l.Calls, l.Window, l.Reserve)
	}
	return &Budget{limit: l}, nil
}

// take spends one call at now, for a refresh of a credential in use or for anything else
// (a first mint, a retry while nothing is held, a presigned URL), or says how long to wait.
func (b *Budget) take(now time.Time, refresh bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.blocked) {
		return &BudgetError{RetryAfter: b.blocked.Sub(now)}
	}
	cut := 0
	for cut < len(b.calls) && !b.calls[cut].After(now.Add(-b.limit.Window)) {
		cut++
	}
	b.calls = b.calls[cut:]
	limit := b.limit.Calls
	if !refresh {
		limit -= b.limit.Reserve
	}
	if over := len(b.calls) - limit; over >= 0 {
		// Wait until enough of the oldest calls have left the window.
		return &BudgetError{RetryAfter: b.calls[over].Add(b.limit.Window).Sub(now)}
	}
	b.calls = append(b.calls, now)
	return nil
}

// block stops every call until until: the API answered 429 with Retry-After.
func (b *Budget) block(until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if until.After(b.blocked) {
		b.blocked = until
	}
}

// setLimits changes the limits, keeping the calls counted (a reload).
func (b *Budget) setLimits(l BudgetLimits) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limit = l
}

// Budgets hands out one [Budget] per API token, for the life of a process: accounts that
// share a token share its budget, and a reload keeps the calls already counted.
type Budgets struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*Budget // by the token's hash: the token itself is not kept
}

// NewBudgets returns an empty registry.
func NewBudgets() *Budgets { return &Budgets{m: map[[sha256.Size]byte]*Budget{}} }

// For returns the token's Budget, created with l or set to l (the latest config wins).
func (bs *Budgets) For(token string, l BudgetLimits) (*Budget, error) {
	if _, err := NewBudget(l); err != nil {
		return nil, err
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	k := sha256.Sum256([]byte(token))
	if b := bs.m[k]; b != nil {
		b.setLimits(l)
		return b, nil
	}
	b, _ := NewBudget(l)
	bs.m[k] = b
	return b, nil
}
