package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCACert: ca-cert prints the local CA only for a config with tls.mode local; without
// --config (zero-config mode serves plain HTTP) or with another mode it fails and creates
// nothing, neither in the default storage nor anywhere else under the home directory.
func TestCACert(t *testing.T) {
	const routes = `
accounts:
  a: {endpoint: "http://127.0.0.1:1", credentials: {access_key_id: k, secret_access_key: s}}
buckets:
  - {name: demo, account: a}
`
	tests := []struct {
		name    string
		config  string // "" runs without --config
		args    []string
		wantErr string // "" for a printed CA
	}{
		{name: "no config", wantErr: "needs --config FILE with tls.mode local"},
		{name: "tls off", config: routes, wantErr: "tls.mode is off, not local"},
		{name: "tls files", config: routes + "tls: {mode: files, cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}\n", wantErr: "tls.mode is files, not local"},
		{name: "an extra argument", config: routes + "tls: {mode: local}\n", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
		{name: "tls local", config: routes + "tls: {mode: local}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
			args := []string{"ca-cert"}
			if tc.config != "" {
				args = append(args, "--config", writeConfig(t, tc.config))
			}
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append(args, tc.args...), &stdout, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one with %q", err, tc.wantErr)
				}
				if stdout.Len() > 0 {
					t.Errorf("printed %q on failure", stdout.String())
				}
				if files := filesUnder(t, home); len(files) > 0 {
					t.Errorf("a refused ca-cert created %q", files)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := pem.Decode(stdout.Bytes())
			if b == nil {
				t.Fatalf("no PEM in %q", stdout.String())
			}
			if ca, err := x509.ParseCertificate(b.Bytes); err != nil || !ca.IsCA {
				t.Fatalf("printed %v (%v); want a CA certificate", ca, err)
			}
			// Storage defaults to $XDG_DATA_HOME/signet.
			if _, err := os.Stat(filepath.Join(home, "data", "signet", "local_ca", "root.crt")); err != nil {
				t.Error(err)
			}
		})
	}
}

// filesUnder returns every file and directory below dir.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}
