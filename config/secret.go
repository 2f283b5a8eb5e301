package config

import "log/slog"

// Secret is a string that never prints: fmt, %v, %#v and slog all show REDACTED.
// Use Value to get the secret itself, only where it is used.
type Secret string

const redacted = "REDACTED"

// Value returns the secret.
func (s Secret) Value() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer, so %#v of a config struct is safe too.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps secrets out of JSON and YAML dumps of a config.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
