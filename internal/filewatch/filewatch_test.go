package filewatch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// failAfter only bounds a failing test; the tests synchronise on the callback.
const failAfter = 10 * time.Second

func TestWatcher(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string) string // returns the path to watch
		change func(t *testing.T, dir string)
	}{
		{
			name:  "written in place by a writer that pauses mid-write: read once, complete",
			setup: func(t *testing.T, dir string) string { return write(t, dir, "f", "old") },
			change: func(t *testing.T, dir string) {
				fh, err := os.OpenFile(filepath.Join(dir, "f"), os.O_WRONLY|os.O_TRUNC, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer fh.Close()
				fh.WriteString("ne")
				time.Sleep(20 * time.Millisecond) // the writer's own pause, well within Settle
				fh.WriteString("w")
			},
		},
		{
			name:  "replaced by rename; other files in the directory do not count",
			setup: func(t *testing.T, dir string) string { return write(t, dir, "f", "old") },
			change: func(t *testing.T, dir string) {
				write(t, dir, "unrelated", "x")
				write(t, dir, ".f.tmp", "new")
				if err := os.Rename(filepath.Join(dir, ".f.tmp"), filepath.Join(dir, "f")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "a kubernetes ..data swap",
			setup: func(t *testing.T, dir string) string {
				os.Mkdir(filepath.Join(dir, "..v1"), 0o755)
				write(t, filepath.Join(dir, "..v1"), "f", "old")
				symlink(t, "..v1", filepath.Join(dir, "..data"))
				symlink(t, "..data/f", filepath.Join(dir, "f"))
				return filepath.Join(dir, "f")
			},
			change: func(t *testing.T, dir string) {
				os.Mkdir(filepath.Join(dir, "..v2"), 0o755)
				write(t, filepath.Join(dir, "..v2"), "f", "new")
				symlink(t, "..v2", filepath.Join(dir, "..data_tmp"))
				if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			seen := make(chan string, 16)
			w, err := New([]string{path}, func() {
				b, _ := os.ReadFile(path)
				seen <- string(b)
			}, func(o *Options) { o.Settle = time.Second })
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.Close() })
			tt.change(t, dir)
			select {
			case got := <-seen:
				if got != "new" {
					t.Errorf("the first callback read %q, want %q", got, "new")
				}
			case <-time.After(failAfter):
				t.Fatal("no callback")
			}
			if err := w.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
