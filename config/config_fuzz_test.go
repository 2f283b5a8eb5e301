package config

import "testing"

// FuzzParse: no input makes the loader panic, and what it accepts validates clean.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("accounts: {a: {endpoint: \"http://h\", credentials: {access_key_id: a, secret_access_key: b}}}\nbuckets: [{name: abc, account: a}]\n"))
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("accounts:\n  a: &x {endpoint: http://h}\n  b: *x\n"))
	env := func(k string) (string, bool) { return "v-" + k, k != "UNSET" }
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := Parse("fuzz.yaml", raw, env)
		if err != nil {
			return
		}
		if errs := cfg.Validate(); len(errs) > 0 {
			t.Fatalf("Parse accepted a config that does not validate: %v", errs)
		}
	})
}
