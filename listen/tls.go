package listen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/caddyserver/certmagic"

	"github.com/signet-proxy/signet/config"
)

// Options are NewTLS's optional settings.
type Options struct {
	// OnReload, when set, is called by files mode from its watcher goroutine after each
	// attempt to re-read cert_file and key_file: with nil when the new pair is being
	// served, or with the error that kept the previous one. Keep it quick. Default: nil.
	OnReload func(err error)

	// TLSALPNPort enables ACME TLS-ALPN-01 challenges (acme mode) and names the port of
	// the S3 listener that answers them through Config. While NewTLS obtains the first
	// certificates, before that listener exists, certmagic binds the port itself for each
	// challenge, on the host of http_challenge_listen. The CA connects to port 443, so
	// this works when the S3 listener is on 443 or 443 is forwarded to it. Zero leaves
	// only HTTP-01. Default: `0`.
	TLSALPNPort int

	// LocalNames are more names local mode issues certificates for, after localhost,
	// *.localhost, 127.0.0.1, ::1 and tls.domains: signet serve passes bucket.<suffix> for
	// every exactly-named route (config.Config.BucketHosts). *.localhost alone is not
	// enough: OpenSSL, and so curl, Python and the AWS CLI, refuses a wildcard directly
	// under a single-label name, so only Go's client accepts it for bucket.localhost; and
	// a wildcard never covers a bucket name with dots. Other modes ignore it.
	// Default: none.
	LocalNames []string

	// acmeIssuer, when set, edits the ACME issuer's template before it is built
	// (tests: to leave TLS-ALPN-01 as the only challenge).
	acmeIssuer func(*certmagic.ACMEIssuer)
}

// TLS is HTTPS for the S3 listener: the *tls.Config to serve with and the background work
// that keeps its certificates current (certmagic's maintenance, the HTTP-01 challenge
// server, the files watcher). A nil *TLS is TLS off: Config returns nil, Close does
// nothing.
type TLS struct {
	config *tls.Config

	magic *certmagic.Config // acme and local
	cache *certmagic.Cache  // acme and local

	local     *localIssuer     // local
	challenge *challengeServer // acme
	files     *filePair        // files

	closeOnce sync.Once
	closeErr  error
}

// NewTLS prepares HTTPS for the S3 listener as cfg describes. With cfg.Mode off it returns
// nil, nil. Otherwise it returns once the listener can serve: in acme mode after every
// domain has a certificate (obtained, or loaded from Storage and renewed if due), in
// local mode after the CA exists and every name has a certificate, in files mode after
// the pair has loaded. ctx bounds that start-up work only; the background work lasts
// until Close. A nil logger discards.
func NewTLS(ctx context.Context, cfg config.TLS, logger *slog.Logger, optFns ...func(*Options)) (*TLS, error) {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With(slog.String("tls_mode", cfg.Mode))
	switch cfg.Mode {
	case config.TLSOff, "":
		return nil, nil
	case config.TLSACME:
		return newACME(ctx, cfg, logger, o)
	case config.TLSLocal:
		return newLocal(ctx, cfg, logger, o)
	case config.TLSFiles:
		f, err := newFilePair(cfg.CertFile, cfg.KeyFile, logger, o.OnReload)
		if err != nil {
			return nil, err
		}
		return &TLS{config: f.tlsConfig(), files: f}, nil
	default:
		return nil, fmt.Errorf("tls mode %q is not off, acme, local or files", cfg.Mode)
	}
}

// Config returns the *tls.Config to serve the S3 listener with, or nil when t is nil (TLS
// off). Its NextProtos offer h2 and http/1.1 (and acme-tls/1 in acme mode). Every call
// returns the same value: do not modify it; Clone it to change a field.
func (t *TLS) Config() *tls.Config {
	if t == nil {
		return nil
	}
	return t.config
}

// AddNames has local mode issue certificates for names too (obtaining them before it
// returns, then renewing them like the others), so that a reload that routes a new
// bucket can serve its bucket.<suffix> host; names already served are left as they are.
// Names are never removed: a name dropped from the config keeps its certificate until
// a restart. In the other modes, and for a nil t, AddNames does nothing: acme obtains
// certificates for tls.domains at start only, and files serves what the files hold.
func (t *TLS) AddNames(ctx context.Context, names []string) error {
	if t == nil || t.local == nil {
		return nil
	}
	t.local.allow(names)
	if err := t.manage(ctx, names); err != nil {
		return fmt.Errorf("local ca: %w", err)
	}
	return nil
}

// Close stops the background work and waits for it: certmagic's certificate maintenance
// (cancelling a renewal in progress), the HTTP-01 challenge server, the files watcher.
// Certificates already loaded keep serving through Config. Close is idempotent and
// accepts a nil t.
func (t *TLS) Close() error {
	if t == nil {
		return nil
	}
	t.closeOnce.Do(func() {
		var errs []error
		if t.cache != nil {
			t.cache.Stop()
		}
		if t.challenge != nil {
			if err := t.challenge.close(); err != nil {
				errs = append(errs, err)
			}
		}
		if t.files != nil {
			if err := t.files.close(); err != nil {
				errs = append(errs, err)
			}
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// DefaultStorage returns where certificates, keys and the ACME account are kept when
// tls.storage is unset: $XDG_DATA_HOME/signet when XDG_DATA_HOME is an absolute path (the
// XDG spec says to ignore a relative one), else ~/.local/share/signet. It is the user's
// data directory, not os.UserConfigDir: these files are state, not configuration.
func DefaultStorage() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "signet"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the user data directory for tls storage: %w", err)
	}
	return filepath.Join(home, ".local", "share", "signet"), nil
}

// storageDir returns cfg.Storage, or DefaultStorage when it is unset, as an absolute path.
func storageDir(cfg config.TLS) (string, error) {
	dir := cfg.Storage
	if dir == "" {
		var err error
		if dir, err = DefaultStorage(); err != nil {
			return "", err
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("tls storage %s: %w", dir, err)
	}
	return abs, nil
}

// newMagic builds a certmagic config over its own cache, which the returned TLS owns.
// Issuers are set by the caller, before any certificate is managed.
func newMagic(storage, defaultServerName string, logger *slog.Logger) (*certmagic.Config, *certmagic.Cache) {
	zl := newZapLogger(logger)
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		// Every certificate in this cache is managed by this one config. magic is set
		// below, before any certificate can enter the cache.
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zl,
	})
	magic = certmagic.New(cache, certmagic.Config{
		Storage:           &certmagic.FileStorage{Path: storage},
		DefaultServerName: defaultServerName,
		Logger:            zl,
	})
	return magic, cache
}

// manage obtains (or loads, renewing if due) a certificate for every name, in order,
// failing on the first that cannot be had.
func (t *TLS) manage(ctx context.Context, names []string) error {
	for _, name := range names {
		// One name per call, so the error says which one failed.
		if err := t.magic.ManageSync(ctx, []string{name}); err != nil {
			return fmt.Errorf("obtain certificate for %s: %w", name, err)
		}
	}
	return nil
}

// serverConfig is the *tls.Config certmagic serves with, offering HTTP/2 and HTTP/1.1;
// acmeTLS keeps acme-tls/1, which TLS-ALPN-01 challenges negotiate.
func serverConfig(magic *certmagic.Config, acmeTLS bool) *tls.Config {
	c := magic.TLSConfig()
	c.MinVersion = tls.VersionTLS12
	protos := []string{"h2", "http/1.1"}
	if acmeTLS {
		protos = append(protos, c.NextProtos...) // acme-tls/1
	}
	c.NextProtos = protos
	return c
}
