// Package config loads and validates signet's YAML configuration.
//
// Loading happens in stages, like Caddy's: decode strictly (every unknown key is reported
// with its line), expand ${ENV} references in string values, apply defaults, then
// [Config.Validate], which is fast, does no I/O and reports every problem at once, each
// with its path (accounts.prod.endpoint) and, when loaded from a file, its line.
//
// # Secrets
//
// Secret values have the type [Secret], which prints as REDACTED through fmt and slog, so a
// config dumped into a log or an error never carries a key.
//
// # Environment variables
//
// Only the ${NAME} form is expanded, and only inside values, never keys: a literal "$" in a
// secret stays as it is. A reference to an unset variable is an error, not an empty string,
// because an empty secret fails later in a far more confusing way. "$${" writes a literal "${".
package config
