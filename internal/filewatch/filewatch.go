// Package filewatch calls back when files may have changed, the way config files, secret
// files and certificates are rotated in practice: written in place, replaced by rename
// (editors, atomic writers), or published by a Kubernetes secret or configMap volume,
// whose files are symlinks through a ..data symlink that kubelet swaps.
//
// # Watch the directory, then settle
//
// A watch on the file itself follows the old inode, and misses a rename and a ..data
// swap: the directory is watched instead, and events on the file's name or on ..data
// count. Writers take several steps (truncate, write, write, close), and a file read
// between two of them may parse and still be half-written (issue 12 item 10), so the
// callback runs only once no event has come for the settle delay.
package filewatch

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Settle is the default quiet time after the last event before the callback runs.
const Settle = 100 * time.Millisecond

// k8sDataLink is the symlink a Kubernetes secret or configMap volume swaps atomically to
// publish new contents; the mounted files are symlinks through it (file -> ..data/file).
const k8sDataLink = "..data"

// Options tunes a [Watcher]. Zero values take the defaults.
type Options struct {
	// Settle is how long no event must come before OnChange runs. Default: [Settle].
	Settle time.Duration
	// OnError receives the watcher's errors (events were lost: OnChange runs anyway, as
	// the files may have changed). Default: nil (not reported).
	OnError func(error)
}

// Watcher watches some files and calls a function when they may have changed.
type Watcher struct {
	w     *fsnotify.Watcher
	files map[string][]string // directory -> base names watched in it
	opts  Options
	fn    func()
	done  chan struct{} // closed when the goroutine returns
	close func() error
}

// New starts watching paths (made absolute; their directories must exist) and calls
// onChange, from the Watcher's own goroutine and never twice at once, once the files may
// have changed and no event came for the settle delay. It watches before returning, so a
// caller that reads the files after New misses no change. Close stops it.
func New(paths []string, onChange func(), optFns ...func(*Options)) (*Watcher, error) {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Settle <= 0 {
		o.Settle = Settle
	}
	if len(paths) == 0 {
		return nil, errors.New("watch files: no file to watch")
	}
	files := map[string][]string{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		dir, base := filepath.Split(abs)
		dir = filepath.Clean(dir)
		if !slices.Contains(files[dir], base) {
			files[dir] = append(files[dir], base)
		}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch files: %w", err)
	}
	for dir := range files {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, fmt.Errorf("watch directory %s: %w", dir, err)
		}
	}
	fw := &Watcher{w: w, files: files, opts: o, fn: onChange, done: make(chan struct{})}
	fw.close = sync.OnceValue(func() error {
		err := fw.w.Close()
		<-fw.done
		if err != nil {
			return fmt.Errorf("close file watcher: %w", err)
		}
		return nil
	})
	go fw.run()
	return fw, nil
}

// Close stops watching and waits for the goroutine, and for a callback in progress.
// It is idempotent.
func (fw *Watcher) Close() error { return fw.close() }

// relevant reports whether ev may have changed what one of the watched paths resolves to.
func (fw *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	dir, base := filepath.Split(ev.Name)
	bases := fw.files[filepath.Clean(dir)]
	return base == k8sDataLink && len(bases) > 0 || slices.Contains(bases, base)
}

func (fw *Watcher) run() {
	defer close(fw.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-fw.w.Events:
			if !ok {
				return
			}
			if fw.relevant(ev) {
				timer.Reset(fw.opts.Settle)
			}
		case err, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			if fw.opts.OnError != nil {
				fw.opts.OnError(err)
			}
			timer.Reset(fw.opts.Settle)
		case <-timer.C:
			fw.fn()
		}
	}
}
