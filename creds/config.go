package creds

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/signet-proxy/signet/config"
)

// FromConfig builds the Provider an account's credentials section describes, reading any
// _file it names. name is the account's name, used in errors. Minted sources come wrapped
// in a [Cache], tuned by the section's refresh_ratio, safety_margin and max_keys and then
// by cacheOpts (for logging and metrics hooks, and CacheOptions.Budgets, the registry an
// r2_temp_api account's budget comes from: api_budget, api_budget_window and
// api_refresh_reserve, per API token). A returned Provider that implements io.Closer
// must be closed when it is no longer used.
func FromConfig(name string, a *config.Account, logger *slog.Logger, cacheOpts ...func(*CacheOptions)) (Provider, error) {
	c := a.Credentials
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	wrap := func(what string, err error) error { return fmt.Errorf("account %s: %s: %w", name, what, err) }
	var m Minter
	var budget func(*CacheOptions) // the API token's, taken from CacheOptions.Budgets
	switch c.Source() {
	case config.SourceFile:
		f, err := NewFile(c.File, logger, func(o *FileOptions) { o.SafetyMargin = time.Duration(c.SafetyMargin) })
		if err != nil {
			return nil, wrap("credentials file", err)
		}
		return f, nil
	case config.SourceAWS:
		aw := c.AWS
		m, err := NewAWS(func(o *AWSOptions) {
			o.Region, o.Profile, o.RoleARN, o.ExternalID = a.Region, aw.Profile, aw.RoleARN, aw.ExternalID
			o.SessionName, o.Duration, o.STSEndpoint = aw.SessionName, time.Duration(aw.Duration), aw.STSEndpoint
		})
		if err != nil {
			return nil, wrap("aws", err)
		}
		ac, err := NewAccountCache(m, cacheOptions(name, c, logger, cacheOpts)...)
		if err != nil {
			return nil, wrap("credentials cache", err)
		}
		return ac, nil
	case config.SourceR2TempAPI:
		api := c.R2TempAPI
		token, err := ValueOrFile(api.APIToken.Value(), api.APITokenFile)
		if err != nil {
			return nil, wrap("api token", err)
		}
		if m, err = NewR2API(a.R2AccountID, token, api.ParentAccessKeyID, func(o *R2APIOptions) {
			o.BaseURL, o.TTL = api.APIBaseURL, time.Duration(api.TTL)
		}); err != nil {
			return nil, wrap("r2_temp_api", err)
		}
		limits := BudgetLimits{Calls: api.APIBudget, Window: time.Duration(api.APIBudgetWindow), Reserve: api.APIRefreshReserve}
		own, err := NewBudget(limits)
		if err != nil {
			return nil, wrap("r2_temp_api", err)
		}
		// Accounts sharing the token share its budget when the caller keeps a registry
		// (signet serve does, for the life of the process); else the account has its own.
		budget = func(o *CacheOptions) {
			switch {
			case o.Budget != nil:
			case o.Budgets != nil:
				o.Budget, _ = o.Budgets.For(token, limits) // limits checked above
			default:
				o.Budget = own
			}
		}
	case config.SourceR2TempLocal:
		l := c.R2TempLocal
		secret, err := ValueOrFile(l.ParentSecretAccessKey.Value(), l.ParentSecretAccessKeyFile)
		if err != nil {
			return nil, wrap("parent secret access key", err)
		}
		if m, err = NewR2Local(a.R2AccountID, l.ParentAccessKeyID, secret, func(o *R2LocalOptions) {
			o.TTL = time.Duration(l.TTL)
		}); err != nil {
			return nil, wrap("r2_temp_local", err)
		}
	default:
		id, err := ValueOrFile(c.AccessKeyID, c.AccessKeyIDFile)
		if err != nil {
			return nil, wrap("access key id", err)
		}
		secret, err := ValueOrFile(c.SecretAccessKey.Value(), c.SecretAccessKeyFile)
		if err != nil {
			return nil, wrap("secret access key", err)
		}
		return NewStatic(id, secret, ""), nil
	}
	opts := cacheOptions(name, c, logger, cacheOpts)
	if budget != nil {
		opts = append(opts, budget) // last: it reads the registry the others may set
	}
	cache, err := NewCache(m, opts...)
	if err != nil {
		return nil, wrap("credentials cache", err)
	}
	return cache, nil
}

// cacheOptions tunes a cache by the credentials section, then by cacheOpts.
func cacheOptions(name string, c config.Credentials, logger *slog.Logger, cacheOpts []func(*CacheOptions)) []func(*CacheOptions) {
	return append([]func(*CacheOptions){func(o *CacheOptions) {
		o.RefreshRatio = c.RefreshRatio
		o.SafetyMargin = time.Duration(c.SafetyMargin)
		o.MaxKeys = c.MaxKeys
		o.Logger = logger.With("account", name)
	}}, cacheOpts...)
}

// ValueOrFile returns v, or the trimmed contents of file when v is empty. A secret file
// usually ends in a newline that is not part of the secret.
func ValueOrFile(v, file string) (string, error) {
	if v != "" || file == "" {
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err // *PathError names the file, never its contents
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return s, nil
}
