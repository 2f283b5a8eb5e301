package config

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settle is how long Watch waits after the last event before calling onChange: editors and
// kubelet write a file in several steps, and one reload should see the last.
const settle = 100 * time.Millisecond

// Watch calls onChange after the file at path may have changed: written in place, replaced
// by rename (editors, atomic writers) or, for a Kubernetes ConfigMap volume, swapped by its
// ..data symlink. It watches the file's directory, because a watch on the file itself
// follows the old inode and misses the last two. It returns nil when ctx is done.
func Watch(ctx context.Context, path string, onChange func()) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	defer w.Close()
	dir, base := filepath.Split(abs)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch config %s: %w", dir, err)
	}
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if name := filepath.Base(ev.Name); name == base || name == "..data" {
				timer.Reset(settle)
			}
		case _, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// Events were lost (a queue overflow): the file may have changed.
			timer.Reset(settle)
		case <-timer.C:
			onChange()
		}
	}
}
