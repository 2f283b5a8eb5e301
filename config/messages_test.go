package config

import (
	"strings"
	"testing"
)

// TestOneMessagePerMistake: each mistake gets one message, in the config's terms (keys and
// paths, never Go types), with a suggestion for a near miss, and sets off no follow-on
// "... is required".
func TestOneMessagePerMistake(t *testing.T) {
	const account = "accounts:\n  prod: {endpoint: \"http://h\", credentials: {access_key_id: a, secret_access_key: b}}\n"
	const route = "buckets: [{name: abc, account: prod}]\n"
	tests := []struct {
		name string
		yaml string
		want string // the whole error
	}{
		{
			name: "a repeated top-level key",
			yaml: account + account + route,
			want: `c.yaml:3: key "accounts" is given twice (first at line 1)`,
		},
		{
			name: "a repeated nested key",
			yaml: "accounts:\n  prod:\n    endpoint: \"http://h\"\n    endpoint: \"http://h\"\n    credentials: {access_key_id: a, secret_access_key: b}\n" + route,
			want: `c.yaml:4: key "endpoint" is given twice in accounts.prod (first at line 3)`,
		},
		{
			name: "a misspelt top-level key",
			yaml: "acounts:\n  prod: {endpoint: \"http://h\", credentials: {access_key_id: a, secret_access_key: b}}\n" + route,
			want: `c.yaml:1: unknown key "acounts" (did you mean "accounts"?)`,
		},
		{
			name: "a misspelt key beside the right one hides nothing",
			yaml: "acounts: {}\n" + account + "buckets: [{name: abc, account: prdo}]\n",
			want: "c.yaml:1: unknown key \"acounts\" (did you mean \"accounts\"?)\n" +
				`c.yaml:4: buckets[0].account: unknown account "prdo" (did you mean "prod"?) (known: prod)`,
		},
		{
			name: "a misspelt required key of a route",
			yaml: account + "buckets: [{name: abc, acount: prod}]\n",
			want: `c.yaml:3: unknown key "acount" in buckets[0] (did you mean "account"?)`,
		},
		{
			name: "a misspelt credential key",
			yaml: "accounts:\n  prod: {endpoint: \"http://h\", credentials: {acess_key_id: a, secret_access_key: b}}\n" + route,
			want: `c.yaml:2: unknown key "acess_key_id" in accounts.prod.credentials (did you mean "access_key_id"?)`,
		},
		{
			name: "an unknown key with no near miss lists the keys",
			yaml: account + "buckets: [{name: abc, account: prod, colour: red}]\n",
			want: `c.yaml:3: unknown key "colour" in buckets[0] (known keys there: name, account, jurisdiction, upstream_bucket, access, admin, prefixes, objects, actions)`,
		},
		{
			name: "a mapping where a list belongs",
			yaml: account + "buckets: {name: abc, account: prod}\n",
			want: `c.yaml:3: buckets: must be a list (each entry on a line starting with "- "), not a mapping`,
		},
		{
			name: "a list where a mapping belongs",
			yaml: "accounts: [prod]\n" + route,
			want: `c.yaml:1: accounts: must be a mapping of names to settings, not a list`,
		},
		{
			name: "scalars of the wrong kind",
			yaml: account + route + "max_concurrent_requests: lots\nallow_anonymous_network: maybe\n",
			want: "c.yaml:4: max_concurrent_requests: \"lots\" is not a whole number\nc.yaml:5: allow_anonymous_network: \"maybe\" is not true or false",
		},
		{
			name: "near-miss values",
			yaml: account + "buckets: [{name: abc, account: prod, access: readonly}]\nlog: {level: warning, format: jsn}\ntls: {mode: acmee, domains: [x.example]}\n",
			want: "c.yaml:5: tls.mode: \"acmee\" is not off, acme, local or files (did you mean \"acme\"?)\n" +
				"c.yaml:4: log.format: \"jsn\" is not text or json (did you mean \"json\"?)\n" +
				"c.yaml:4: log.level: \"warning\" is not debug, info, warn or error (did you mean \"warn\"?)\n" +
				"c.yaml:3: buckets[0].access: \"readonly\" is not read-write or read-only (did you mean \"read-only\"?)",
		},
		{
			name: "a near-miss account name",
			yaml: account + "buckets: [{name: abc, account: prdo}]\n",
			want: `c.yaml:3: buckets[0].account: unknown account "prdo" (did you mean "prod"?) (known: prod)`,
		},
		{
			name: "a near-miss jurisdiction",
			yaml: "accounts:\n  prod: {r2_account_id: 0123456789abcdef0123456789abcdef, credentials: {access_key_id: a, secret_access_key: b}}\nbuckets: [{name: abc, account: prod, jurisdiction: eu1}]\n",
			want: `c.yaml:3: buckets[0].jurisdiction: unknown jurisdiction "eu1" (did you mean "eu"?) (use default, eu, fedramp, us)`,
		},
		{
			name: "timeouts are checked",
			yaml: "accounts:\n  prod: {endpoint: \"http://h\", credentials: {access_key_id: a, secret_access_key: b}, timeouts: {response_header: -1s, dial: soon}}\n" + route,
			want: "c.yaml:2: accounts.prod.timeouts.dial: \"soon\" is not a duration (write a number and a unit: \"30s\", \"5m\", \"1h\")\n" +
				"c.yaml:2: accounts.prod.timeouts.response_header: must not be negative",
		},
		{
			name: "a misspelt timeout",
			yaml: "accounts:\n  prod: {endpoint: \"http://h\", credentials: {access_key_id: a, secret_access_key: b}, timeouts: {response_headers: 5s}}\n" + route,
			want: `c.yaml:2: unknown key "response_headers" in accounts.prod.timeouts (did you mean "response_header"?)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml), env(nil))
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestTimeoutDefaults(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("accounts:\n  a: {endpoint: \"http://h\", credentials: {access_key_id: a, secret_access_key: b}, timeouts: {dial: 1s}}\nbuckets: [{name: abc, account: a}]\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Timeouts{Dial: Duration(1e9), TLSHandshake: DefaultTLSHandshakeTimeout, ResponseHeader: DefaultResponseHeaderTimeout}
	if got := cfg.Accounts["a"].Timeouts; got != want {
		t.Errorf("timeouts = %+v, want %+v", got, want)
	}
}

func TestNearest(t *testing.T) {
	tests := []struct {
		name, s string
		options []string
		want    string
	}{
		{name: "swapped letters", s: "prdo", options: []string{"prod", "staging"}, want: "prod"},
		{name: "prefix", s: "warning", options: []string{"debug", "info", "warn", "error"}, want: "warn"},
		{name: "missing hyphen", s: "readonly", options: []string{"read-write", "read-only"}, want: "read-only"},
		{name: "too far", s: "colour", options: []string{"name", "account"}, want: ""},
		{name: "exact is no suggestion", s: "eu", options: []string{"default", "eu"}, want: ""},
		{name: "short names need a close match", s: "x", options: []string{"eu", "us"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nearest(tt.s, tt.options); got != tt.want {
				t.Errorf("nearest(%q) = %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}

// TestZeroConfigErrorsNameVariables: in zero-config mode a mistake is reported under the
// environment variable the user set, not the path of the config built from it.
func TestZeroConfigErrorsNameVariables(t *testing.T) {
	base := map[string]string{"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID": "a", "R2_SECRET_ACCESS_KEY": "b"}
	tests := []struct {
		name, key, value, want string
	}{
		{"account id", "R2_ACCOUNT_ID", "xyz", `R2_ACCOUNT_ID: "xyz" is not a 32-hex-digit Cloudflare account id`},
		{"endpoint", "R2_ENDPOINT", "ftp://h", `R2_ENDPOINT: "ftp://h": the scheme must be http or https`},
		{"jurisdiction", "R2_JURISDICTION", "euu", `R2_JURISDICTION: unknown jurisdiction "euu" (did you mean "eu"?)`},
		{"anonymous network", EnvAllowAnonymousNetwork, "sure", `SIGNET_ALLOW_ANONYMOUS_NETWORK="sure" is not true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{tt.key: tt.value}
			for k, v := range base {
				if k != tt.key {
					vars[k] = v
				}
			}
			_, err := FromEnv(env(vars))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "accounts.") || strings.Contains(err.Error(), "buckets[") {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
