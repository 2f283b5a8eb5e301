package listen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"

	"github.com/signet-proxy/signet/internal/filewatch"
)

// filePair serves a certificate and key from disk and re-reads them when they change.
type filePair struct {
	certFile, keyFile string // absolute
	log               *slog.Logger
	onReload          func(error)

	cert atomic.Pointer[tls.Certificate]

	watcher *filewatch.Watcher
}

// newFilePair loads the pair and starts watching the directories that hold it (see
// filewatch: renames, ..data swaps, a settle delay). It fails if the pair does not load or
// a directory cannot be watched.
func newFilePair(certFile, keyFile string, logger *slog.Logger, onReload func(error)) (*filePair, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls mode files needs cert_file and key_file")
	}
	var err error
	f := &filePair{log: logger, onReload: onReload}
	if f.certFile, err = filepath.Abs(certFile); err != nil {
		return nil, fmt.Errorf("tls cert_file %s: %w", certFile, err)
	}
	if f.keyFile, err = filepath.Abs(keyFile); err != nil {
		return nil, fmt.Errorf("tls key_file %s: %w", keyFile, err)
	}
	f.log = logger.With(slog.String("cert_file", f.certFile), slog.String("key_file", f.keyFile))

	// Watch before the first read, so that a change between the two is not missed.
	w, err := filewatch.New([]string{f.certFile, f.keyFile}, f.reload, func(o *filewatch.Options) {
		o.OnError = func(err error) { f.log.Warn("watch tls certificate files", slog.Any("error", err)) }
	})
	if err != nil {
		return nil, fmt.Errorf("watch tls certificate files: %w", err)
	}
	cert, err := f.load()
	if err != nil {
		w.Close()
		return nil, err
	}
	f.cert.CompareAndSwap(nil, cert) // a reload may have been quicker
	f.watcher = w
	return f, nil
}

// close stops the watcher and waits for it.
func (f *filePair) close() error {
	if err := f.watcher.Close(); err != nil {
		return fmt.Errorf("close tls certificate watcher: %w", err)
	}
	return nil
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
