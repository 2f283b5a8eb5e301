package proxy

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/creds"
)

// SetupOptions are Setup's optional settings.
type SetupOptions struct {
	// Previous is the table being replaced by a reload: accounts whose configuration is
	// unchanged keep its credential providers, and so their credentials. Default: nil.
	Previous *Table
	// Metrics, when set, counts credential mints. Default: nil.
	Metrics *Metrics
	// CacheOptions tune the caches of minted credentials (after the config's own settings).
	CacheOptions []func(*creds.CacheOptions)
}

// Setup builds the route table of cfg with a credentials provider per account, built by
// creds.FromConfig. Close the table (or Retire it, after a reload) to stop the providers'
// background work.
func Setup(cfg *config.Config, logger *slog.Logger, optFns ...func(*SetupOptions)) (*Table, error) {
	var o SetupOptions
	for _, fn := range optFns {
		fn(&o)
	}
	providers := make(map[string]creds.Provider, len(cfg.Accounts))
	transports := map[string]*http.Transport{}
	keySums := make(map[string][sha256.Size]byte, len(cfg.Accounts))
	var created []creds.Provider
	closeCreated := func() {
		for _, p := range created {
			closeProvider(p)
		}
	}
	var errs []error
	names := make([]string, 0, len(cfg.Accounts))
	for name := range cfg.Accounts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		a := cfg.Accounts[name]
		keys := keyFilesSum(a)
		if prev := o.Previous; prev != nil && reflect.DeepEqual(prev.accounts[name], a) && prev.keyFiles[name] == keys {
			providers[name] = prev.providers[name]
			transports[name] = prev.transports[name]
			keySums[name] = keys
			continue
		}
		keySums[name] = keys
		cacheOpts := o.CacheOptions
		if o.Metrics != nil {
			cacheOpts = append([]func(*creds.CacheOptions){o.Metrics.mintHook(name)}, cacheOpts...)
		}
		p, err := creds.FromConfig(name, a, logger, cacheOpts...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		providers[name] = p
		created = append(created, p)
	}
	if len(errs) > 0 {
		closeCreated()
		return nil, errors.Join(errs...)
	}
	t, err := newTable(cfg, providers, transports)
	if err != nil {
		closeCreated()
		return nil, err
	}
	if t.clients, err = newClients(cfg.Clients); err != nil {
		closeCreated()
		return nil, err
	}
	t.accounts, t.keyFiles = cfg.Accounts, keySums
	return t, nil
}

func closeProvider(p creds.Provider) {
	if c, ok := p.(io.Closer); ok {
		_ = c.Close()
	}
}

// lifecycle counts a table's requests in flight, so that a table replaced by a reload
// releases its providers only once its last request is done.
type lifecycle struct {
	inflight  atomic.Int64
	retired   atomic.Bool
	next      atomic.Pointer[Table] // providers still used here are not closed
	closeOnce sync.Once
}

func (t *Table) acquire() { t.life.inflight.Add(1) }

func (t *Table) release() {
	if t.life.inflight.Add(-1) == 0 && t.life.retired.Load() {
		t.closeUnused()
	}
}

// Retire marks t as replaced by next: once its requests in flight are done, it closes the
// providers that next does not use.
func (t *Table) Retire(next *Table) {
	t.life.next.Store(next)
	t.life.retired.Store(true)
	if t.life.inflight.Load() == 0 {
		t.closeUnused()
	}
}

// Close stops the background work of every credential provider of the table.
func (t *Table) Close() error {
	t.life.closeOnce.Do(func() {
		for _, p := range t.providers {
			closeProvider(p)
		}
		for _, tr := range t.transports {
			tr.CloseIdleConnections()
		}
	})
	return nil
}

func (t *Table) closeUnused() {
	t.life.closeOnce.Do(func() {
		next := t.life.next.Load()
		for name, p := range t.providers {
			if next != nil && next.providers[name] == p {
				continue
			}
			closeProvider(p)
		}
		for name, tr := range t.transports {
			if next == nil || next.transports[name] != tr {
				tr.CloseIdleConnections()
			}
		}
	})
}

// keyFilesSum hashes the files an account reads its keys from once, at setup: a reload
// with the config unchanged but a key file rotated (a new API token, say) must set the
// account up again rather than keep the provider holding the old key.
func keyFilesSum(a *config.Account) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range a.KeyFiles() {
		b, err := os.ReadFile(f)
		if err != nil {
			b = []byte(err.Error()) // set up again; FromConfig reports it
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return [sha256.Size]byte(h.Sum(nil))
}
