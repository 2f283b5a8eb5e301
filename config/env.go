package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FromEnv builds the zero-config mode's config: every bucket goes to the one R2 account
// named by R2_ACCOUNT_ID, signed with R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY, in the
// jurisdiction R2_JURISDICTION (default "default"). R2_ENDPOINT overrides the derived
// endpoint, as endpoint does in a file.
func FromEnv(lookupEnv func(string) (string, bool)) (*Config, error) {
	get := func(name string) string { v, _ := lookupEnv(name); return strings.TrimSpace(v) }
	var missing []string
	for _, name := range []string{"R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"} {
		if get(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no config file given, and zero-config mode needs the environment variables %s (missing: %s); "+
			"or pass --config FILE", "R2_ACCOUNT_ID, R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY", strings.Join(missing, ", "))
	}
	cfg := &Config{
		ZeroConfig: true,
		Accounts: map[string]*Account{"r2": {
			R2AccountID: get("R2_ACCOUNT_ID"),
			Endpoint:    get("R2_ENDPOINT"),
			Credentials: Credentials{
				AccessKeyID:     get("R2_ACCESS_KEY_ID"),
				SecretAccessKey: Secret(get("R2_SECRET_ACCESS_KEY")),
			},
		}},
		Buckets: []*Bucket{{Name: "*", Account: "r2", Jurisdiction: get("R2_JURISDICTION")}},
	}
	var errs []error
	if v := get(EnvAllowAnonymousNetwork); v != "" {
		allow, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not true or false", EnvAllowAnonymousNetwork, v))
		}
		cfg.AllowAnonymousNetwork = allow
	}
	cfg.ApplyDefaults()
	for _, fe := range cfg.Validate() {
		// Name what the user set, not the config paths of the config built from it.
		if name, ok := envOf(formatPath(fe.Path)); ok {
			errs = append(errs, fmt.Errorf("%s: %w", name, fe.Err))
		} else {
			errs = append(errs, fmt.Errorf("zero-config mode: %w", fe))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// EnvAllowAnonymousNetwork is allow_anonymous_network for zero-config mode, which has no
// file to set it in (a container listening on all its addresses needs it).
const EnvAllowAnonymousNetwork = "SIGNET_ALLOW_ANONYMOUS_NETWORK"

// envOf names the environment variable behind a path of the zero-config config.
func envOf(path string) (string, bool) {
	switch path {
	case "accounts.r2.r2_account_id":
		return "R2_ACCOUNT_ID", true
	case "accounts.r2.endpoint":
		return "R2_ENDPOINT", true
	case "accounts.r2.credentials", "accounts.r2.credentials.access_key_id":
		return "R2_ACCESS_KEY_ID", true
	case "buckets[0].jurisdiction":
		return "R2_JURISDICTION", true
	}
	return "", false
}
