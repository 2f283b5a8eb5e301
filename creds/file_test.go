package creds

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reloadTimeout only bounds a failing test; the tests synchronise on OnReload.
const reloadTimeout = 10 * time.Second

func credsYAML(n int) string {
	return fmt.Sprintf("access_key_id: AK%d\nsecret_access_key: SECRET%d\nsession_token: TOKEN%d\n", n, n, n)
}

// writeAtomic replaces dir/name the way rotators do: write a temporary file, rename it over.
func writeAtomic(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// newWatchedFile opens path with a channel that receives every reload's outcome.
func newWatchedFile(t *testing.T, path string, optFns ...func(*FileOptions)) (*File, <-chan error) {
	t.Helper()
	reloads := make(chan error, 64)
	fns := append([]func(*FileOptions){func(o *FileOptions) {
		o.OnReload = func(err error) { reloads <- err }
	}}, optFns...)
	f, err := NewFile(path, nil, fns...)
	if err != nil {
		t.Fatalf("NewFile: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f, reloads
}

// waitReload returns the outcome of the next reload.
func waitReload(t *testing.T, reloads <-chan error) error {
	t.Helper()
	select {
	case err := <-reloads:
		return err
	case <-time.After(reloadTimeout):
		t.Fatalf("no reload within %s", reloadTimeout)
		return nil
	}
}

func retrieveKeyID(t *testing.T, f *File) string {
	t.Helper()
	cr, err := f.Retrieve(t.Context(), Key{})
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	return cr.AccessKeyID
}

func TestFileFormats(t *testing.T) {
	exp := time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		content    string
		wantKeyID  string
		wantToken  string
		wantExpiry time.Time
		wantErr    string
	}{
		{name: "yaml", content: credsYAML(1) + "expiration: 2099-01-02T03:04:05Z\n",
			wantKeyID: "AK1", wantToken: "TOKEN1", wantExpiry: exp},
		{name: "yaml quoted expiry with offset", content: credsYAML(1) + "expiration: \"2099-01-02T04:04:05+01:00\"\n",
			wantKeyID: "AK1", wantToken: "TOKEN1", wantExpiry: exp},
		{name: "json", content: `{"access_key_id":"AK2","secret_access_key":"SECRET2","expiration":"2099-01-02T03:04:05.000Z"}`,
			wantKeyID: "AK2", wantExpiry: exp},
		{name: "credential_process", content: `{"Version":1,"AccessKeyId":"AK3","SecretAccessKey":"SECRET3","SessionToken":"TOKEN3","Expiration":"2099-01-02T03:04:05Z"}`,
			wantKeyID: "AK3", wantToken: "TOKEN3", wantExpiry: exp},
		{name: "long-lived", content: "access_key_id: AK4\nsecret_access_key: SECRET4\n", wantKeyID: "AK4"},
		{name: "both spellings agree", content: `{"access_key_id":"AK5","AccessKeyId":"AK5","secret_access_key":"SECRET5"}`, wantKeyID: "AK5"},
		{name: "no secret", content: "access_key_id: AK6\n", wantErr: "secret_access_key is missing"},
		{name: "empty", content: "", wantErr: "access_key_id is missing"},
		{name: "bad expiration", content: credsYAML(7) + "expiration: tomorrow\n", wantErr: "not RFC 3339"},
		{name: "spellings disagree", content: `{"access_key_id":"AK8","AccessKeyId":"AK9","secret_access_key":"SECRET8"}`, wantErr: "given twice"},
		{name: "not yaml", content: "access_key_id: [SECRET9\n", wantErr: "parse credentials file"},
		{name: "wrong shape", content: "access_key_id: {a: SECRET10}\nsecret_access_key: SECRET10\n", wantErr: "parse credentials file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "creds.yaml")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := NewFile(path, nil)
			if tt.wantErr != "" {
				if err == nil {
					f.Close()
					t.Fatalf("NewFile succeeded, want %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Errorf("err = %v, want %q naming the file", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("error holds a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewFile: %v", err)
			}
			t.Cleanup(func() { f.Close() })
			cr, err := f.Retrieve(t.Context(), Key{Bucket: "ignored"})
			if err != nil {
				t.Fatalf("Retrieve: %v", err)
			}
			if cr.AccessKeyID != tt.wantKeyID || cr.SessionToken != tt.wantToken || cr.SecretAccessKey == "" {
				t.Errorf("credentials = %s/%s, want %s/%s", cr.AccessKeyID, cr.SessionToken, tt.wantKeyID, tt.wantToken)
			}
			if cr.CanExpire != !tt.wantExpiry.IsZero() || !cr.Expires.Equal(tt.wantExpiry) {
				t.Errorf("expiry = %v (CanExpire %v), want %v", cr.Expires, cr.CanExpire, tt.wantExpiry)
			}
		})
	}
}

func TestFileFollowsRenameRotation(t *testing.T) {
	dir := t.TempDir()
	writeAtomic(t, dir, "creds.yaml", credsYAML(1))
	f, reloads := newWatchedFile(t, filepath.Join(dir, "creds.yaml"))
	if got := retrieveKeyID(t, f); got != "AK1" {
		t.Fatalf("initial credentials = %s, want AK1", got)
	}
	for n := 2; n <= 4; n++ {
		// Unrelated files in the directory cause no reload: the first reload is the rename's.
		if err := os.WriteFile(filepath.Join(dir, "unrelated.yaml"), []byte(credsYAML(99)), 0o600); err != nil {
			t.Fatal(err)
		}
		writeAtomic(t, dir, "creds.yaml", credsYAML(n))
		if err := waitReload(t, reloads); err != nil {
			t.Fatalf("reload %d: %v", n, err)
		}
		if got, want := retrieveKeyID(t, f), fmt.Sprintf("AK%d", n); got != want {
			t.Fatalf("after rotation %d: credentials = %s, want %s", n, got, want)
		}
	}
}

func TestFileFollowsKubernetesSymlinkSwap(t *testing.T) {
	// A secret volume: creds.yaml -> ..data/creds.yaml, ..data -> ..<timestamp>; an update
	// writes a new timestamped directory, points ..data_tmp at it and renames it over ..data.
	dir := t.TempDir()
	swap := func(n int) {
		t.Helper()
		ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", n, n)
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ts, "creds.yaml"), []byte(credsYAML(n)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if n > 1 {
			old := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", n-1, n-1)
			if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
				t.Fatal(err)
			}
		}
	}
	swap(1)
	if err := os.Symlink(filepath.Join("..data", "creds.yaml"), filepath.Join(dir, "creds.yaml")); err != nil {
		t.Fatal(err)
	}
	f, reloads := newWatchedFile(t, filepath.Join(dir, "creds.yaml"))
	if got := retrieveKeyID(t, f); got != "AK1" {
		t.Fatalf("initial credentials = %s, want AK1", got)
	}
	for n := 2; n <= 3; n++ {
		swap(n)
		if err := waitReload(t, reloads); err != nil {
			t.Fatalf("reload after swap %d: %v", n, err)
		}
		if got, want := retrieveKeyID(t, f), fmt.Sprintf("AK%d", n); got != want {
			t.Fatalf("after swap %d: credentials = %s, want %s", n, got, want)
		}
	}
}

func TestFileKeepsOldCredentialsOnBadFile(t *testing.T) {
	dir := t.TempDir()
	writeAtomic(t, dir, "creds.json", `{"AccessKeyId":"AK1","SecretAccessKey":"SECRET1"}`)
	f, reloads := newWatchedFile(t, filepath.Join(dir, "creds.json"))

	bad := []struct {
		name    string
		content string
		wantErr string
	}{
		{name: "truncated", content: `{"AccessKeyId":"AK2","Secret`, wantErr: "parse credentials file"},
		{name: "no secret", content: `{"AccessKeyId":"AK2"}`, wantErr: "secret_access_key is missing"},
		{name: "already expired", content: `{"AccessKeyId":"AK2","SecretAccessKey":"S2","Expiration":"2000-01-01T00:00:00Z"}`, wantErr: "expired at 2000-01-01T00:00:00Z"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			writeAtomic(t, dir, "creds.json", tt.content)
			err := waitReload(t, reloads)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("reload: err = %v, want %q", err, tt.wantErr)
			}
			if got := retrieveKeyID(t, f); got != "AK1" {
				t.Errorf("credentials = %s, want the old AK1", got)
			}
			if st := f.Status(); len(st) != 1 || st[0].LastError == nil || !st[0].Valid {
				t.Errorf("Status = %+v, want valid with the reload error", st)
			}
		})
	}

	// Removing the file keeps the old credentials too.
	if err := os.Remove(filepath.Join(dir, "creds.json")); err != nil {
		t.Fatal(err)
	}
	if err := waitReload(t, reloads); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reload after remove: err = %v, want not-exist", err)
	}
	if got := retrieveKeyID(t, f); got != "AK1" {
		t.Errorf("credentials = %s, want the old AK1", got)
	}

	writeAtomic(t, dir, "creds.json", `{"AccessKeyId":"AK3","SecretAccessKey":"SECRET3"}`)
	if err := waitReload(t, reloads); err != nil {
		t.Fatalf("reload of a good file: %v", err)
	}
	if got := retrieveKeyID(t, f); got != "AK3" {
		t.Errorf("credentials = %s, want AK3", got)
	}
	if st := f.Status(); st[0].LastError != nil {
		t.Errorf("Status after recovery = %+v", st)
	}
}

func TestFileExpiry(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		expires   time.Time
		wantValid bool
	}{
		{name: "valid", expires: now.Add(time.Hour), wantValid: true},
		{name: "within the margin", expires: now.Add(30 * time.Second)},
		{name: "expired", expires: now.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeAtomic(t, dir, "creds.yaml", credsYAML(1)+"expiration: "+tt.expires.Format(time.RFC3339)+"\n")
			path := filepath.Join(dir, "creds.yaml")
			f, _ := newWatchedFile(t, path, func(o *FileOptions) { o.Now = func() time.Time { return now } })
			cr, err := f.Retrieve(t.Context(), Key{})
			if tt.wantValid {
				if err != nil || cr.AccessKeyID != "AK1" {
					t.Errorf("Retrieve = %s, %v", cr.AccessKeyID, err)
				}
			} else {
				if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), path) {
					t.Errorf("Retrieve: err = %v, want ErrNoCredentials naming %s", err, path)
				}
				if err != nil && strings.Contains(err.Error(), "SECRET1") {
					t.Errorf("error holds the secret: %v", err)
				}
			}
			if st := f.Status(); st[0].Valid != tt.wantValid || !st[0].Expires.Equal(tt.expires) {
				t.Errorf("Status = %+v", st)
			}
		})
	}
}

func TestFileClose(t *testing.T) {
	dir := t.TempDir()
	writeAtomic(t, dir, "creds.yaml", credsYAML(1))
	f, err := NewFile(filepath.Join(dir, "creds.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The last credentials read stay available.
	if got := retrieveKeyID(t, f); got != "AK1" {
		t.Errorf("credentials after Close = %s", got)
	}
	if _, err := NewFile(filepath.Join(dir, "missing", "creds.yaml"), nil); err == nil {
		t.Error("NewFile in a missing directory succeeded")
	}
}

// TestFileSettlesBeforeReading: a credentials file rewritten in place by a writer that
// pauses mid-write is read once it is complete, never half-written, even where the half
// parses (issue 12 item 10).
func TestFileSettlesBeforeReading(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "creds.yaml")
	writeAtomic(t, dir, "creds.yaml", credsYAML(1))
	f, reloads := newWatchedFile(t, path, func(o *FileOptions) { o.Settle = time.Second })
	full := "access_key_id: AK2\nsecret_access_key: SECRET2-complete\n"
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(full[:len(full)-10]) // "secret_access_key: SECR": parses
	time.Sleep(20 * time.Millisecond)   // the writer's own pause, well within Settle
	fh.WriteString(full[len(full)-10:])
	fh.Close()
	if err := waitReload(t, reloads); err != nil {
		t.Fatal(err)
	}
	cr, err := f.Retrieve(t.Context(), Key{})
	if err != nil || cr.SecretAccessKey != "SECRET2-complete" {
		t.Errorf("after an in-place rewrite: %q, %v; want the complete secret", cr.SecretAccessKey, err)
	}
}

// TestFilePrefersPreviousKeysWhenRefused: new keys the upstream refuses give way to the
// previous ones while those are valid; keys refused in turn are not gone back to (no
// flapping), Status reports a refusal, and the next rewrite is taken (issue 12 item 10).
func TestFilePrefersPreviousKeysWhenRefused(t *testing.T) {
	dir := t.TempDir()
	writeAtomic(t, dir, "creds.yaml", credsYAML(1))
	f, reloads := newWatchedFile(t, filepath.Join(dir, "creds.yaml"))
	writeAtomic(t, dir, "creds.yaml", credsYAML(2))
	if err := waitReload(t, reloads); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		act         func()
		want        string
		wantRefused bool
	}{
		{"new keys taken", func() {}, "AK2", false},
		{"new keys refused: back to the previous", func() { f.Invalidate(Key{}) }, "AK1", false},
		{"previous refused too: no flapping", func() { f.Invalidate(Key{}) }, "AK1", true},
		{"the next rewrite is taken", func() {
			writeAtomic(t, dir, "creds.yaml", credsYAML(3))
			if err := waitReload(t, reloads); err != nil {
				t.Fatal(err)
			}
		}, "AK3", false},
	}
	for _, s := range steps {
		s.act()
		if got := retrieveKeyID(t, f); got != s.want {
			t.Errorf("%s: credentials %s, want %s", s.name, got, s.want)
		}
		if st := f.Status(); st[0].Refused != s.wantRefused {
			t.Errorf("%s: Status().Refused = %v, want %v", s.name, st[0].Refused, s.wantRefused)
		}
	}
}
