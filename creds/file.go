package creds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.yaml.in/yaml/v3"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/internal/filewatch"
)

// maxCredentialsFile bounds what is read of a credentials file.
const maxCredentialsFile = 64 << 10

// FileOptions tunes a [File]. Zero values take the defaults.
type FileOptions struct {
	// SafetyMargin is how long the file's credentials must remain valid to be returned.
	// Default: `1m`.
	SafetyMargin time.Duration
	// OnReload, when set, is called from the watcher goroutine after each re-read the
	// watcher triggers: err is nil when new credentials were taken, else why the file was
	// refused (the previous credentials stay). It must not block. Default: nil (no call).
	OnReload func(err error)
	// Settle is how long the file must go unchanged before it is re-read: a file read while
	// its writer is still at work may parse and be half-written. Default: `100ms`.
	Settle time.Duration
	// Now is the clock for expiry decisions. Default: time.Now.
	Now func() time.Time
}

// File is a [Provider] of the credentials in a JSON or YAML file, whatever the key,
// re-read whenever the file changes. The file holds
//
//	access_key_id: AKIA...
//	secret_access_key: ...
//	session_token: ...            # optional
//	expiration: 2026-01-02T15:04:05Z  # optional, RFC 3339
//
// or the same as the AWS credential_process JSON spells it (AccessKeyId, SecretAccessKey,
// SessionToken, Expiration; Version is ignored), which many rotators write.
//
// It watches the file's directory rather than the file, so it sees a file replaced by
// rename (the atomic way to write) and a Kubernetes secret volume's ..data symlink swap; a
// watch on the file itself would follow the old inode and miss both. It re-reads the file
// only once it has settled. A file that does not parse keeps the previous credentials and
// the error is logged and kept for Status. When upstream refuses new keys (Invalidate),
// File goes back to the previous ones while they are valid and not refused themselves: a
// rotator that wrote a wrong or half-written key must not take working keys away.
type File struct {
	path string // absolute
	opts FileOptions
	log  *slog.Logger

	watcher *filewatch.Watcher

	mu      sync.RWMutex
	creds   aws.Credentials
	loaded  time.Time
	lastErr error
	gen     uint64          // counts the credentials taken (read or gone back to)
	refused refusal         // the last Invalidate
	prev    aws.Credentials // the keys creds replaced; zero when none
	// prevRefused: prev was refused upstream, so it is no way back.
	prevRefused bool
}

var (
	_ Provider    = (*File)(nil)
	_ Invalidator = (*File)(nil)
)

// NewFile reads the credentials at path and starts watching it. It fails if the file cannot
// be read or parsed, or its directory cannot be watched. Call Close to stop the watcher.
// A nil logger discards.
func NewFile(path string, logger *slog.Logger, optFns ...func(*FileOptions)) (*File, error) {
	var o FileOptions
	for _, fn := range optFns {
		fn(&o)
	}
	o.SafetyMargin = cmp.Or(o.SafetyMargin, config.DefaultSafetyMargin)
	if o.Now == nil {
		o.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	f := &File{path: abs, opts: o, log: logger.With("credentials_file", abs)}

	// Watch before the first read, so that a change between the two is not missed.
	w, err := filewatch.New([]string{abs}, f.reload, func(wo *filewatch.Options) {
		wo.Settle = o.Settle
		wo.OnError = func(err error) { f.log.Warn("watch credentials file", "error", err) }
	})
	if err != nil {
		return nil, fmt.Errorf("watch credentials file %s: %w", abs, err)
	}
	cr, err := readCredentialsFile(abs)
	if err != nil {
		w.Close()
		return nil, err
	}
	f.mu.Lock()
	if !f.creds.HasKeys() { // a reload may have been quicker
		f.creds, f.loaded = cr, o.Now()
	}
	f.mu.Unlock()
	f.watcher = w
	return f, nil
}

// Retrieve returns the file's credentials, whatever the key. It fails with an error
// wrapping [ErrNoCredentials] when they expire within SafetyMargin.
func (f *File) Retrieve(ctx context.Context, _ Key) (aws.Credentials, error) {
	if err := ctx.Err(); err != nil {
		return aws.Credentials{}, err
	}
	f.mu.RLock()
	cr, lastErr := f.creds, f.lastErr
	f.mu.RUnlock()
	if cr.CanExpire && cr.Expires.Sub(f.opts.Now()) <= f.opts.SafetyMargin {
		if lastErr != nil {
			return aws.Credentials{}, fmt.Errorf("%w: credentials in %s expire at %s; last reload: %w",
				ErrNoCredentials, f.path, cr.Expires.Format(time.RFC3339), lastErr)
		}
		return aws.Credentials{}, fmt.Errorf("%w: credentials in %s expire at %s",
			ErrNoCredentials, f.path, cr.Expires.Format(time.RFC3339))
	}
	return cr, nil
}

// Invalidate records that upstream refused the file's credentials, whatever the key. If
// they replaced keys that are still valid and were not refused, File goes back to those
// until the file changes again.
func (f *File) Invalidate(Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	f.refused = refusal{at: now, gen: f.gen}
	if !f.prev.HasKeys() || f.prevRefused || f.prev.CanExpire && f.prev.Expires.Sub(now) <= f.opts.SafetyMargin {
		return
	}
	f.log.Warn("upstream refused the credentials file's new keys; going back to the previous ones",
		"access_key_id", f.creds.AccessKeyID, "previous_access_key_id", f.prev.AccessKeyID)
	// The refused keys become the way back, marked refused: no flapping between the two.
	f.creds, f.prev, f.prevRefused = f.prev, f.creds, true
	f.loaded = now
	f.gen++
}

// Status reports the file's credentials as one entry with a zero Key.
func (f *File) Status() []KeyStatus {
	f.mu.RLock()
	defer f.mu.RUnlock()
	now := f.opts.Now()
	s := KeyStatus{MintedAt: f.loaded, LastError: f.lastErr}
	s.Valid = !f.creds.CanExpire || f.creds.Expires.Sub(now) > f.opts.SafetyMargin
	s.Refused = f.refused.counts(f.gen, now)
	if f.creds.CanExpire {
		s.Expires = f.creds.Expires
	}
	if f.lastErr != nil {
		s.Failures = 1
	}
	return []KeyStatus{s}
}

// Close stops watching the file and waits for the watcher goroutine. The last credentials
// read stay available to Retrieve. Close is idempotent.
func (f *File) Close() error {
	if err := f.watcher.Close(); err != nil {
		return fmt.Errorf("close watcher of %s: %w", f.path, err)
	}
	return nil
}

// reload re-reads the file, keeping the previous credentials if it does not parse, or if
// it holds credentials already expired while the previous ones are still good (a rotator
// that wrote a stale file).
func (f *File) reload() {
	cr, err := readCredentialsFile(f.path)
	f.mu.Lock()
	if now := f.opts.Now(); err == nil && cr.CanExpire && !cr.Expires.After(now) && f.creds.HasKeys() && (!f.creds.CanExpire || f.creds.Expires.After(now)) {
		err = fmt.Errorf("credentials file %s holds credentials that expired at %s", f.path, cr.Expires.Format(time.RFC3339))
	}
	switch {
	case err != nil:
		f.lastErr = err
	case cr == f.creds:
		f.lastErr = nil // rewritten unchanged
	default:
		if f.creds.HasKeys() {
			f.prev, f.prevRefused = f.creds, !f.refused.at.IsZero() && f.refused.gen == f.gen
		}
		f.creds, f.loaded, f.lastErr = cr, f.opts.Now(), nil
		f.gen++
	}
	f.mu.Unlock()
	if err != nil {
		f.log.Warn("reload credentials file; keeping the previous credentials", "error", err)
	} else {
		f.log.Info("reloaded credentials file", "access_key_id", cr.AccessKeyID, "expires", cr.Expires)
	}
	if f.opts.OnReload != nil {
		f.opts.OnReload(err)
	}
}

// credentialsFile is the file's schema, in signet's spelling and credential_process's.
type credentialsFile struct {
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	SessionToken    string `yaml:"session_token"`
	Expiration      string `yaml:"expiration"`

	ProcessAccessKeyID     string `yaml:"AccessKeyId"`
	ProcessSecretAccessKey string `yaml:"SecretAccessKey"`
	ProcessSessionToken    string `yaml:"SessionToken"`
	ProcessExpiration      string `yaml:"Expiration"`
}

// readCredentialsFile reads and validates the credentials at path. Its errors name the file
// and the field, never a value.
func readCredentialsFile(path string) (aws.Credentials, error) {
	fh, err := os.Open(path)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("read credentials file: %w", err)
	}
	defer fh.Close()
	raw, err := io.ReadAll(io.LimitReader(fh, maxCredentialsFile+1))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("read credentials file %s: %w", path, err)
	}
	if len(raw) > maxCredentialsFile {
		return aws.Credentials{}, fmt.Errorf("credentials file %s exceeds %d bytes", path, maxCredentialsFile)
	}
	var cf credentialsFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		// yaml's messages quote line numbers and token kinds, not values.
		return aws.Credentials{}, fmt.Errorf("parse credentials file %s: %w", path, err)
	}
	var errs []error
	pick := func(name, snake, pascal string) string {
		if snake != "" && pascal != "" && snake != pascal {
			errs = append(errs, fmt.Errorf("%s is given twice with different values", name))
		}
		return cmp.Or(snake, pascal)
	}
	cr := aws.Credentials{
		AccessKeyID:     pick("access_key_id/AccessKeyId", cf.AccessKeyID, cf.ProcessAccessKeyID),
		SecretAccessKey: pick("secret_access_key/SecretAccessKey", cf.SecretAccessKey, cf.ProcessSecretAccessKey),
		SessionToken:    pick("session_token/SessionToken", cf.SessionToken, cf.ProcessSessionToken),
		Source:          "file",
	}
	if cr.AccessKeyID == "" {
		errs = append(errs, errors.New("access_key_id is missing"))
	}
	if cr.SecretAccessKey == "" {
		errs = append(errs, errors.New("secret_access_key is missing"))
	}
	if exp := pick("expiration/Expiration", cf.Expiration, cf.ProcessExpiration); exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			errs = append(errs, fmt.Errorf("expiration %q: not RFC 3339", exp))
		} else {
			cr.CanExpire, cr.Expires = true, t
		}
	}
	if err := errors.Join(errs...); err != nil {
		return aws.Credentials{}, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return cr, nil
}
