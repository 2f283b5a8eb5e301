package proxy

import (
	"errors"
	"io"
	"log/slog"
	"slices"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/creds"
)

// Setup builds the route table of cfg with a credentials provider per account, built by
// creds.FromConfig (cacheOpts tune the caches of minted credentials). Close the table
// to stop the providers' background work.
func Setup(cfg *config.Config, logger *slog.Logger, cacheOpts ...func(*creds.CacheOptions)) (*Table, error) {
	providers := make(map[string]creds.Provider, len(cfg.Accounts))
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}
	var errs []error
	names := make([]string, 0, len(cfg.Accounts))
	for name := range cfg.Accounts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p, err := creds.FromConfig(name, cfg.Accounts[name], logger, cacheOpts...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		providers[name] = p
		if c, ok := p.(io.Closer); ok {
			closers = append(closers, c)
		}
	}
	if len(errs) > 0 {
		closeAll()
		return nil, errors.Join(errs...)
	}
	t, err := NewTable(cfg, providers)
	if err != nil {
		closeAll()
		return nil, err
	}
	t.closers = closers
	return t, nil
}

// Close stops the background work of the table's credential providers.
func (t *Table) Close() error {
	var errs []error
	for _, c := range t.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
