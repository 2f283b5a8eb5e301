package config

import (
	"errors"
	"fmt"
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
	cfg.ApplyDefaults()
	if fes := cfg.Validate(); len(fes) > 0 {
		errs := make([]error, len(fes))
		for i, fe := range fes {
			errs[i] = fmt.Errorf("zero-config from R2_* environment variables: %w", fe)
		}
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}
