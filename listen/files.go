package listen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"
)

// k8sDataLink is the symlink a Kubernetes secret or configmap volume swaps atomically to
// publish new contents; the files themselves are symlinks through it.
const k8sDataLink = "..data"

// filePair serves a certificate and key from disk and re-reads them when they change.
type filePair struct {
	certFile, keyFile string // absolute
	log               *slog.Logger
	onReload          func(error)

	cert atomic.Pointer[tls.Certificate]

	watcher *fsnotify.Watcher
	done    chan struct{} // closed when the watch goroutine returns
	close   func() error  // sync.OnceValue
}

// newFilePair loads the pair and starts watching the directories that hold it. It fails
// if the pair does not load or a directory cannot be watched.
func newFilePair(certFile, keyFile string, logger *slog.Logger, onReload func(error)) (*filePair, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls mode files needs cert_file and key_file")
	}
	var err error
	f := &filePair{log: logger, onReload: onReload, done: make(chan struct{})}
	if f.certFile, err = filepath.Abs(certFile); err != nil {
		return nil, fmt.Errorf("tls cert_file %s: %w", certFile, err)
	}
	if f.keyFile, err = filepath.Abs(keyFile); err != nil {
		return nil, fmt.Errorf("tls key_file %s: %w", keyFile, err)
	}
	f.log = logger.With(slog.String("cert_file", f.certFile), slog.String("key_file", f.keyFile))

	// Watch before the first read, so that a change between the two is not missed.
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch tls certificate files: %w", err)
	}
	for _, dir := range f.dirs() {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, fmt.Errorf("watch tls certificate directory %s: %w", dir, err)
		}
	}
	cert, err := f.load()
	if err != nil {
		w.Close()
		return nil, err
	}
	f.cert.Store(cert)
	f.watcher = w
	f.close = sync.OnceValue(func() error {
		err := f.watcher.Close()
		<-f.done
		if err != nil {
			return fmt.Errorf("close tls certificate watcher: %w", err)
		}
		return nil
	})
	go f.watch()
	return f, nil
}

// dirs returns the directories to watch: the parents of the two files, once each.
func (f *filePair) dirs() []string {
	cd, kd := filepath.Dir(f.certFile), filepath.Dir(f.keyFile)
	if cd == kd {
		return []string{cd}
	}
	return []string{cd, kd}
}

// tlsConfig serves whichever pair was loaded last.
func (f *filePair) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return f.cert.Load(), nil
		},
	}
}

// load reads and parses the pair.
func (f *filePair) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate and key: %w", err)
	}
	return &cert, nil
}

// relevant reports whether an event may have changed what one of the paths resolves to.
func (f *filePair) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	dir, base := filepath.Dir(ev.Name), filepath.Base(ev.Name)
	for _, p := range []string{f.certFile, f.keyFile} {
		if dir == filepath.Dir(p) && (base == filepath.Base(p) || base == k8sDataLink) {
			return true
		}
	}
	return false
}

// watch re-reads the pair on every relevant event until the watcher is closed.
func (f *filePair) watch() {
	defer close(f.done)
	for {
		select {
		case ev, ok := <-f.watcher.Events:
			if !ok {
				return
			}
			if f.relevant(ev) {
				f.reload()
			}
		case err, ok := <-f.watcher.Errors:
			if !ok {
				return
			}
			f.log.Warn("watch tls certificate files", slog.Any("error", err))
		}
	}
}

// reload re-reads the pair, keeping the previous one if the new one does not load.
func (f *filePair) reload() {
	cert, err := f.load()
	if err != nil {
		f.log.Warn("reload tls certificate; keeping the previous one", slog.Any("error", err))
	} else {
		f.cert.Store(cert)
		f.log.Info("reloaded tls certificate", slog.Any("names", cert.Leaf.DNSNames),
			slog.Time("expires", cert.Leaf.NotAfter))
	}
	if f.onReload != nil {
		f.onReload(err)
	}
}
