package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

const good = `
listen: 127.0.0.1:9000
virtual_host_suffixes: [localhost]
accounts:
  prod:
    r2_account_id: 0123456789abcdef0123456789abcdef
    credentials:
      access_key_id: ${AK}
      secret_access_key_file: /run/secrets/r2
  local:
    endpoint: http://127.0.0.1:7070
    region: us-east-1
    credentials: {access_key_id: ak, secret_access_key: "${SK}"}
buckets:
  - name: photos
    account: prod
    jurisdiction: eu
    upstream_bucket: photos-eu
    access: read-only
  - name: "logs-*"
    account: prod
  - name: scratch
    account: local
`

func TestParseGood(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(good), env(map[string]string{"AK": "key-id", "SK": "s$cret${x"}))
	if err != nil {
		t.Fatal(err)
	}
	prod := cfg.Accounts["prod"]
	if prod.Region != "auto" || prod.Credentials.AccessKeyID != "key-id" {
		t.Errorf("prod = %+v", prod)
	}
	local := cfg.Accounts["local"]
	if got := local.Credentials.SecretAccessKey.Value(); got != "s$cret${x" {
		t.Errorf("secret = %q: expanded values must not be expanded again", got)
	}
	b := cfg.Buckets
	if b[0].Jurisdiction != "eu" || b[0].Access != AccessReadOnly || b[1].Jurisdiction != "default" || b[1].Access != AccessReadWrite {
		t.Errorf("buckets = %+v %+v", b[0], b[1])
	}
	if s := fmt.Sprintf("%v %+v %#v", local.Credentials, local.Credentials, local.Credentials); strings.Contains(s, "s$cret") {
		t.Errorf("secret printed: %s", s)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // each must appear in the error
		not  []string // none may
	}{
		{
			name: "a ttl that leaves no usable lifetime before the refresh",
			yaml: "accounts:\n  e:\n    r2_account_id: 0123456789abcdef0123456789abcdef\n    credentials:\n      r2_temp_local: {parent_access_key_id: p, parent_secret_access_key: s, ttl: 1m}\nbuckets: [{name: abc, account: e}]\n",
			want: []string{`accounts.e.credentials.r2_temp_local.ttl: 1m0s must be longer than 3m0s`, "raise ttl or lower safety_margin"},
		},
		{
			name: "unknown keys are all reported with lines",
			yaml: "listen: 127.0.0.1:9000\nlisten_addr: x\naccounts:\n  a:\n    endpoint: http://h\n    secret: x\n    credentials: {access_key_id: a, secret_access_key: b}\nbuckets: [{name: abc, account: a}]\n",
			want: []string{`c.yaml:2: unknown key "listen_addr"`, `c.yaml:6: unknown key "secret"`},
		},
		{
			name: "missing account, bad jurisdiction, bad glob together",
			yaml: `accounts:
  prod:
    r2_account_id: 0123456789abcdef0123456789abcdef
    credentials: {access_key_id: a, secret_access_key: b}
buckets:
  - name: photos
    account: prdo
  - name: docs
    account: prod
    jurisdiction: mars
  - name: "logs-[a"
    account: prod
`,
			want: []string{
				`c.yaml:7: buckets[0].account: unknown account "prdo" (did you mean "prod"?) (known: prod)`,
				`c.yaml:10: buckets[1].jurisdiction: unknown jurisdiction "mars"`,
				`c.yaml:11: buckets[2].name: "logs-[a" is not a valid glob`,
			},
		},
		{
			name: "unset env var",
			yaml: "accounts:\n  a:\n    endpoint: http://h\n    credentials: {access_key_id: a, secret_access_key: '${NOPE}'}\nbuckets: [{name: abc, account: a}]\n",
			want: []string{"c.yaml:4: environment variable NOPE is not set"},
		},
		{
			name: "account needs an endpoint or r2 id, credentials need a secret",
			yaml: "accounts:\n  a:\n    region: x\n    credentials: {access_key_id: a}\nbuckets: [{name: abc, account: a}]\n",
			want: []string{"c.yaml:2: accounts.a: set r2_account_id", "c.yaml:4: accounts.a.credentials: secret_access_key or secret_access_key_file is required"},
		},
		{
			name: "jurisdiction on a non-R2 account, bad endpoint, bad bucket names",
			yaml: `accounts:
  s3:
    endpoint: ftp://h/path
    credentials: {access_key_id: a, secret_access_key: b}
buckets:
  - {name: My_Bucket, account: s3}
  - {name: abc, account: s3, jurisdiction: eu}
  - {name: "a*", account: s3, upstream_bucket: other}
  - {name: abc, account: s3, access: write}
`,
			want: []string{
				`c.yaml:3: accounts.s3.endpoint: "ftp://h/path": the scheme must be http or https`,
				`c.yaml:6: buckets[0].name: bucket name "My_Bucket" may hold only lowercase`,
				`c.yaml:7: buckets[1].jurisdiction: jurisdiction "eu" needs an R2 account`,
				`c.yaml:8: buckets[2].upstream_bucket: a glob route cannot rename`,
				`c.yaml:9: buckets[3].name: bucket "abc" is already routed by buckets[1]`,
				`c.yaml:9: buckets[3].access: "write" is not read-write or read-only`,
			},
		},
		{
			name: "api budget and key cap out of range",
			yaml: `accounts:
  cf:
    r2_account_id: 0123456789abcdef0123456789abcdef
    credentials:
      r2_temp_api: {api_token: t, parent_access_key_id: p, api_budget: 100, api_refresh_reserve: 100, api_budget_window: -1s}
      max_keys: -1
buckets: [{name: abc, account: cf}]
`,
			want: []string{
				`accounts.cf.credentials.r2_temp_api.api_refresh_reserve: 100 must be at least 0 and less than api_budget (100)`,
				`accounts.cf.credentials.r2_temp_api.api_budget_window: must be positive`,
				`accounts.cf.credentials.max_keys: -1 must be at least 1`,
			},
		},
		{
			name: "an endpoint or api url with a password never prints it (issue 12 item 5)",
			yaml: `accounts:
  s3:
    endpoint: https://user:hunter2-pass@h.example/path
    credentials: {access_key_id: a, secret_access_key: b}
  bad:
    endpoint: "https://user:hunter2-pass@h ex/%zz"
    credentials: {access_key_id: a, secret_access_key: b}
  cf:
    r2_account_id: 0123456789abcdef0123456789abcdef
    credentials:
      r2_temp_api: {api_token: t, parent_access_key_id: p, api_base_url: "ftp://me:hunter2-pass@api.example"}
buckets: [{name: abc, account: s3}]
`,
			want: []string{
				`accounts.s3.endpoint: "https://user:xxxxx@h.example/path": give only scheme://host[:port]`,
				`accounts.bad.endpoint: "https://xxxxx@h ex/%zz" is not a URL`,
				`accounts.cf.credentials.r2_temp_api.api_base_url: "ftp://me:xxxxx@api.example" is not an http(s) URL`,
			},
			not: []string{"hunter2"},
		},
		{
			name: "network listen without clients, and bad clients",
			yaml: `listen: 0.0.0.0:9000
clients:
  - {name: web, access_key_id: k, secret_access_key: s}
  - {access_key_id: k, secret_access_key: s, buckets: ["[x"], access: all}
accounts:
  a: {endpoint: "http://h", credentials: {access_key_id: a, secret_access_key: b}}
buckets: [{name: abc, account: a}]
`,
			want: []string{
				"c.yaml:3: clients[0]: buckets is required",
				"c.yaml:4: clients[1]: name is required",
				"c.yaml:4: clients[1].access_key_id: access key id is already used by clients[0]",
				`c.yaml:4: clients[1].buckets[0]: "[x" is not a valid glob`,
				`c.yaml:4: clients[1].access: "all" is not read-write or read-only`,
			},
		},
		{
			name: "network listen needs clients or allow_anonymous_network",
			yaml: "listen: 0.0.0.0:9000\naccounts:\n  a: {endpoint: \"http://h\", credentials: {access_key_id: a, secret_access_key: b}}\nbuckets: [{name: abc, account: a}]\n",
			want: []string{`c.yaml:1: listen: "0.0.0.0:9000" is reachable beyond this machine`, "allow_anonymous_network: true"},
		},
		{
			name: "type errors have lines and paths",
			yaml: "listen: [a]\nmax_concurrent_requests: lots\naccounts:\n  a:\n    endpoint: http://h\n    credentials: {access_key_id: a, secret_access_key: b}\nbuckets: [{name: abc, account: a}]\n",
			want: []string{
				"c.yaml:1: listen: must be a single value, not a list",
				`c.yaml:2: max_concurrent_requests: "lots" is not a whole number`,
			},
		},
		{
			name: "allowed origins are origins, never any website",
			yaml: "allowed_origins: ['*', 'https://app.example.com/page', 'app.example.com', 'https://App.example.com', 'http://localhost:3000']\naccounts:\n  a:\n    endpoint: http://h\n    credentials: {access_key_id: a, secret_access_key: b}\nbuckets: [{name: abc, account: a}]\n",
			want: []string{
				`allowed_origins[0]: "*" would let any website in; list each origin`,
				`allowed_origins[1]: "https://app.example.com/page" has a path`,
				`allowed_origins[2]: "app.example.com" is not an origin`,
				`allowed_origins[3]: "https://App.example.com": write it lowercase`,
			},
		},
		{
			name: "bad durations are reported with every other problem",
			yaml: `shutdown_timeout: 5 minutes
listen_addr: x
accounts:
  a:
    r2_account_id: 0123456789abcdef0123456789abcdef
    credentials:
      r2_temp_api: {api_token: t, parent_access_key_id: p, ttl: [1h]}
      safety_margin: 10 minutes
buckets:
  - {name: abc, account: a, jurisdiction: mars}
`,
			want: []string{
				`c.yaml:1: shutdown_timeout: "5 minutes" is not a duration (write a number and a unit: "30s", "5m", "1h")`,
				`c.yaml:2: unknown key "listen_addr"`,
				`c.yaml:7: accounts.a.credentials.r2_temp_api.ttl: a list is not a duration`,
				`c.yaml:8: accounts.a.credentials.safety_margin: "10 minutes" is not a duration`,
				`c.yaml:10: buckets[0].jurisdiction: unknown jurisdiction "mars"`,
			},
		},
		{
			name: "a bad duration from the environment",
			yaml: "shutdown_timeout: ${T}\naccounts:\n  a: {endpoint: \"http://h\", credentials: {access_key_id: a, secret_access_key: b}}\nbuckets: [{name: abc, account: a}]\n",
			env:  map[string]string{"T": "30"},
			want: []string{`c.yaml:1: shutdown_timeout: "30" is not a duration`},
		},
		{
			name: "a duration from the environment hides no unknown key",
			yaml: "shutdown_timeout: ${T}\nlisten_addr: x\naccounts:\n  a: {endpoint: \"http://h\", credentials: {access_key_id: a, secret_access_key: b}}\nbuckets: [{name: abc, account: a}]\n",
			env:  map[string]string{"T": "1m"},
			want: []string{`c.yaml:2: unknown key "listen_addr"`},
		},
		{
			name: "a root that is not a mapping",
			yaml: "- a\n",
			want: []string{"c.yaml:1: the file must be a mapping of settings (listen:, accounts:, buckets: ...), not a list"},
		},
		{
			name: "syntax error with a hint for unquoted env references",
			yaml: "accounts: {a: {endpoint: ${X}}}\n",
			want: []string{"c.yaml:1: did not find expected ',' or '}'", `quote ${VAR} references: "${VAR}"`},
		},
		{
			// yaml.v3 numbers its parser's lines from 0: this would say 2.
			name: "syntax error in a flow mapping on a later line",
			yaml: "listen: 127.0.0.1:9000\naccounts:\n  a: {endpoint: ${X}, credentials: {}}\n",
			want: []string{"c.yaml:3: did not find expected ',' or '}' (inside { } or [ ], quote ${VAR} references"},
		},
		{
			name: "no env hint when the failing line has no reference",
			yaml: "listen: ${L}\naccounts:\n  a: {endpoint: http://h\nbuckets: [{name: abc, account: a}]\n",
			want: []string{"c.yaml:3: did not find expected ',' or '}'"},
			not:  []string{"quote ${VAR}"},
		},
		{
			name: "no env hint for other syntax errors",
			yaml: "listen: x\naccounts:\n  a:\n    endpoint: http://h\n  b: x: ${Y}\n",
			want: []string{"c.yaml:5: mapping values are not allowed in this context"},
			not:  []string{"quote ${VAR}"},
		},
		{
			name: "syntax error at the end of the file",
			yaml: "listen: x\nbuckets: [\n",
			want: []string{"c.yaml:2: did not find expected node content"},
		},
		{
			name: "syntax error on the first line",
			yaml: "\tlisten: x\n",
			want: []string{"c.yaml:1: found character that cannot start any token"},
		},
		{
			name: "empty",
			yaml: "",
			want: []string{"c.yaml: the file is empty"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml), env(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error contains %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	_, err := FromEnv(env(map[string]string{"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef"}))
	if err == nil || !strings.Contains(err.Error(), "missing: R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY") {
		t.Fatalf("err = %v", err)
	}
	cfg, err := FromEnv(env(map[string]string{
		"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID": "a",
		"R2_SECRET_ACCESS_KEY": "b", "R2_JURISDICTION": "eu",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ZeroConfig || cfg.Buckets[0].Name != "*" || cfg.Buckets[0].Jurisdiction != "eu" || cfg.Accounts["r2"].Region != "auto" {
		t.Errorf("cfg = %+v", cfg)
	}
	_, err = FromEnv(env(map[string]string{
		"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID": "a",
		"R2_SECRET_ACCESS_KEY": "b", "R2_JURISDICTION": "mars",
	}))
	if err == nil || !strings.Contains(err.Error(), `unknown jurisdiction "mars"`) {
		t.Errorf("err = %v", err)
	}
}

func TestCheckBucketName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"abc", true}, {"my.bucket-1", true}, {"ab", false}, {strings.Repeat("a", 64), false},
		{"-abc", false}, {"abc-", false}, {"a..b", false}, {"192.168.1.1", false}, {"ABC", false}, {"a_b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckBucketName(tt.name); (err == nil) != tt.ok {
				t.Errorf("CheckBucketName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestBucketHosts(t *testing.T) {
	const accounts = `
accounts:
  a: {endpoint: http://127.0.0.1:7070, credentials: {access_key_id: k, secret_access_key: s}}
`
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "default suffix",
			yaml: "buckets:\n  - {name: demo, account: a}\n  - {name: my.photos, account: a}\n",
			want: []string{"demo.localhost", "my.photos.localhost"},
		},
		{
			name: "every suffix, in order",
			yaml: "virtual_host_suffixes: [localhost, s3.example.test]\nbuckets:\n  - {name: demo, account: a}\n",
			want: []string{"demo.localhost", "demo.s3.example.test"},
		},
		{
			name: "globs have no host",
			yaml: "buckets:\n  - {name: \"logs-*\", account: a}\n  - {name: \"b?t\", account: a}\n  - {name: \"[ab]cd\", account: a}\n  - {name: demo, account: a}\n",
			want: []string{"demo.localhost"},
		},
		{
			name: "a repeated suffix gives each host once",
			yaml: "virtual_host_suffixes: [localhost, localhost]\nbuckets:\n  - {name: demo, account: a}\n",
			want: []string{"demo.localhost"},
		},
		{
			name: "no suffixes, no hosts",
			yaml: "virtual_host_suffixes: []\nbuckets:\n  - {name: demo, account: a}\n",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(accounts+tt.yaml), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.BucketHosts(); !slices.Equal(got, tt.want) {
				t.Errorf("BucketHosts() = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestExampleConfig keeps config.example.yaml loadable.
func TestExampleConfig(t *testing.T) {
	raw, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("config.example.yaml", raw, func(string) (string, bool) { return "set", true })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Buckets) == 0 || cfg.Accounts["prod"] == nil {
		t.Errorf("example config: %+v", cfg)
	}
}

func TestHasInlineSecrets(t *testing.T) {
	const (
		accounts = "accounts:\n  a:\n    endpoint: http://h\n    credentials:\n      access_key_id: a\n"
		r2       = "accounts:\n  a:\n    r2_account_id: 0123456789abcdef0123456789abcdef\n    credentials:\n"
		buckets  = "buckets: [{name: abc, account: a}]\n"
	)
	tests := []struct {
		name string
		yaml string
		want bool
	}{
		{"a literal secret", accounts + "      secret_access_key: s3cr3t\n" + buckets, true},
		{"a secret from the environment", accounts + "      secret_access_key: ${S}\n" + buckets, false},
		{"quoted", accounts + "      secret_access_key: \"${S}\"\n" + buckets, false},
		{"two references", accounts + "      secret_access_key: ${S}${T}\n" + buckets, false},
		{"part written in the file", accounts + "      secret_access_key: pre-${S}\n" + buckets, true},
		{"an escaped reference is text", accounts + "      secret_access_key: $${S}\n" + buckets, true},
		{"a secret file", accounts + "      secret_access_key_file: /run/secrets/s\n" + buckets, false},
		{"api token from the environment", r2 + "      r2_temp_api: {api_token: \"${S}\", parent_access_key_id: p}\n" + buckets, false},
		{"literal api token", r2 + "      r2_temp_api: {api_token: tok, parent_access_key_id: p}\n" + buckets, true},
		{"parent secret from the environment", r2 + "      r2_temp_local: {parent_access_key_id: p, parent_secret_access_key: \"${S}\"}\n" + buckets, false},
		{"literal parent secret", r2 + "      r2_temp_local: {parent_access_key_id: p, parent_secret_access_key: s3cr3t}\n" + buckets, true},
		{
			"client secrets from the environment, one through an alias",
			accounts + "      secret_access_key: ${S}\n" + buckets + `clients:
  - {name: a, access_key_id: ca, secret_access_key: &cs "${T}", buckets: [abc]}
  - {name: b, access_key_id: cb, secret_access_key: *cs, buckets: [abc]}
`,
			false,
		},
		{
			"one literal client secret among references",
			accounts + "      secret_access_key: ${S}\n" + buckets + `clients:
  - {name: a, access_key_id: ca, secret_access_key: "${T}", buckets: [abc]}
  - {name: b, access_key_id: cb, secret_access_key: s3cr3t, buckets: [abc]}
`,
			true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tt.yaml), env(map[string]string{"S": "from-env", "T": "also"}))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.HasInlineSecrets(); got != tt.want {
				t.Errorf("HasInlineSecrets() = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("a config not from a file counts every secret", func(t *testing.T) {
		cfg := &Config{Clients: []*Client{{SecretAccessKey: "s3cr3t"}}}
		if !cfg.HasInlineSecrets() {
			t.Error("HasInlineSecrets() = false")
		}
	})
}

// TestShortTTLWithSmallerMargin: a short ttl is fine once safety_margin leaves it usable.
func TestShortTTLWithSmallerMargin(t *testing.T) {
	y := "accounts:\n  e:\n    r2_account_id: 0123456789abcdef0123456789abcdef\n    credentials:\n      r2_temp_local: {parent_access_key_id: p, parent_secret_access_key: s, ttl: 1m}\n      safety_margin: 10s\nbuckets: [{name: abc, account: e}]\n"
	if _, err := Parse("c.yaml", []byte(y), env(nil)); err != nil {
		t.Error(err)
	}
}

// TestCredentialDefaults: the credential defaults come from one place, ApplyDefaults; the
// refresh reserve is at most a quarter of a smaller budget.
func TestCredentialDefaults(t *testing.T) {
	for _, tc := range []struct {
		name        string
		api         string
		wantBudget  int
		wantReserve int
	}{
		{name: "defaults", api: "{api_token: t, parent_access_key_id: p}", wantBudget: DefaultAPIBudget, wantReserve: DefaultAPIRefreshReserve},
		{name: "a small budget", api: "{api_token: t, parent_access_key_id: p, api_budget: 100}", wantBudget: 100, wantReserve: 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte("accounts:\n  cf:\n    r2_account_id: 0123456789abcdef0123456789abcdef\n    credentials:\n      r2_temp_api: "+tc.api+"\nbuckets: [{name: abc, account: cf}]\n"), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Accounts["cf"].Credentials
			a := c.R2TempAPI
			if a.APIBudget != tc.wantBudget || a.APIRefreshReserve != tc.wantReserve || a.APIBudgetWindow != Duration(DefaultAPIBudgetWindow) ||
				c.MaxKeys != DefaultMaxKeys || c.RefreshRatio != DefaultRefreshRatio || c.SafetyMargin != Duration(DefaultSafetyMargin) ||
				a.TTL != Duration(DefaultR2APITTL) || a.APIBaseURL != DefaultCloudflareAPI {
				t.Errorf("defaults: %+v %+v", c, a)
			}
		})
	}
}
