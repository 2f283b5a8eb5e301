package listen

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/signet-proxy/signet/config"
)

// Local CA parameters.
const (
	localRootLifetime = 10 * 365 * 24 * time.Hour
	// localLeafLifetime is short so that a leaked key is soon useless; certmagic renews
	// a leaf when a third of its lifetime is left (RenewalWindowRatio).
	localLeafLifetime = 7 * 24 * time.Hour
	// localBackdate covers clocks a little behind ours.
	localBackdate = 5 * time.Minute

	localRootCertKey = "local_ca/root.crt"
	localRootKeyKey  = "local_ca/root.key"
	localCALockKey   = "local_ca_create"
)

// localNames are the names local mode serves: localhost, *.localhost and the loopback
// addresses, then each list's names not already there, in order.
func localNames(lists ...[]string) []string {
	names := []string{"localhost", "*.localhost", "127.0.0.1", "::1"}
	for _, list := range lists {
		for _, n := range list {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// newLocal loads or creates the local CA and has certmagic issue a leaf for each name.
func newLocal(ctx context.Context, cfg config.TLS, logger *slog.Logger, o Options) (_ *TLS, err error) {
	storage, err := storageDir(cfg)
	if err != nil {
		return nil, err
	}
	ca, err := loadOrCreateCA(ctx, &certmagic.FileStorage{Path: storage}, logger)
	if err != nil {
		return nil, err
	}
	names := localNames(cfg.Domains, o.LocalNames)
	t := &TLS{local: &localIssuer{ca: ca, names: names}}
	t.magic, t.cache = newMagic(storage, "localhost", logger)
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	t.magic.Issuers = []certmagic.Issuer{t.local}
	if err := t.manage(ctx, names); err != nil {
		return nil, fmt.Errorf("local ca: %w", err)
	}
	t.config = serverConfig(t.magic, false)
	logger.Info("tls ready", slog.Any("names", names), slog.String("storage", storage),
		slog.String("ca", ca.cert.Subject.CommonName), slog.Time("ca_expires", ca.cert.NotAfter))
	return t, nil
}

// CACertificatePEM returns the PEM certificate of the local CA (tls mode local), creating
// the CA in cfg.Storage (or DefaultStorage) if it does not exist yet, for `signet
// ca-cert`: clients that trust it accept every certificate local mode serves.
func CACertificatePEM(cfg config.TLS) ([]byte, error) {
	if cfg.Mode != config.TLSLocal {
		return nil, fmt.Errorf("tls mode is %q: only mode local has a local ca", cfg.Mode)
	}
	storage, err := storageDir(cfg)
	if err != nil {
		return nil, err
	}
	// Local file operations only; the one wait is for another signet creating the CA.
	ca, err := loadOrCreateCA(context.Background(), &certmagic.FileStorage{Path: storage}, nil)
	if err != nil {
		return nil, err
	}
	return ca.certPEM, nil
}

// localCA is the root that signs local-mode leaves.
type localCA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// loadOrCreateCA returns the CA kept in storage, creating it under storage's lock if it
// is not there. A certificate without its key is an error, never silently replaced:
// clients may trust it.
func loadOrCreateCA(ctx context.Context, storage *certmagic.FileStorage, logger *slog.Logger) (*localCA, error) {
	ca, err := loadCA(ctx, storage)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return ca, err
	}
	if err := storage.Lock(ctx, localCALockKey); err != nil {
		return nil, fmt.Errorf("lock local ca in %s: %w", storage.Path, err)
	}
	defer storage.Unlock(context.WithoutCancel(ctx), localCALockKey)
	// Another process may have created it while we waited for the lock.
	if ca, err := loadCA(ctx, storage); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return ca, err
	}
	ca, err = newCA()
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("encode local ca key: %w", err)
	}
	// Key first: the certificate's presence marks the pair complete.
	if err := storage.Store(ctx, localRootKeyKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return nil, fmt.Errorf("store local ca key: %w", err)
	}
	if err := storage.Store(ctx, localRootCertKey, ca.certPEM); err != nil {
		return nil, fmt.Errorf("store local ca certificate: %w", err)
	}
	if logger != nil {
		logger.Info("created local ca", slog.String("storage", storage.Path), slog.Time("expires", ca.cert.NotAfter))
	}
	return ca, nil
}

// loadCA reads the CA from storage. Its error wraps fs.ErrNotExist only when there is no
// certificate.
func loadCA(ctx context.Context, storage *certmagic.FileStorage) (*localCA, error) {
	certPEM, err := storage.Load(ctx, localRootCertKey)
	if err != nil {
		return nil, fmt.Errorf("load local ca certificate: %w", err)
	}
	keyPEM, err := storage.Load(ctx, localRootKeyKey)
	if err != nil {
		// Not fs.ErrNotExist to the caller: a certificate without its key must not be
		// replaced by a new CA without anyone noticing.
		return nil, fmt.Errorf("load local ca key (the certificate is in %s): %v", storage.Path, err)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("local ca certificate in %s: no PEM certificate", storage.Path)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse local ca certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("local ca key in %s: no PEM block", storage.Path)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse local ca key: %w", err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("local ca key in %s: %T cannot sign", storage.Path, k)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("local ca in %s: the key does not match the certificate", storage.Path)
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("local ca in %s expired at %s: remove %s and %s to create a new one",
			storage.Path, cert.NotAfter.Format(time.RFC3339), localRootCertKey, localRootKeyKey)
	}
	return &localCA{cert: cert, certPEM: certPEM, key: key}, nil
}

// newCA makes an ECDSA P-256 root valid for about ten years that may sign leaves only.
func newCA() (*localCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate local ca key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	// A random suffix tells CAs apart in trust stores (several machines, a re-created CA).
	id := make([]byte, 4)
	rand.Read(id) // never fails (crypto/rand since Go 1.24)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "signet local CA " + hex.EncodeToString(id), Organization: []string{"signet"}},
		NotBefore:             now.Add(-localBackdate),
		NotAfter:              now.Add(localRootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // leaves only, no intermediates
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create local ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse local ca certificate: %w", err)
	}
	return &localCA{cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// localIssuer is the certmagic Issuer of local mode: it signs certmagic's CSRs with the
// local CA, for the names local mode manages and no others.
type localIssuer struct {
	ca       *localCA
	lifetime time.Duration // of each leaf; 0 means localLeafLifetime (tests shorten it)

	mu    sync.Mutex // Issue runs on certmagic's goroutines while AddNames adds names
	names []string
}

var _ certmagic.Issuer = (*localIssuer)(nil)

// allow adds names to those the issuer signs for.
func (li *localIssuer) allow(names []string) {
	li.mu.Lock()
	defer li.mu.Unlock()
	for _, n := range names {
		if !slices.Contains(li.names, n) {
			li.names = append(li.names, n)
		}
	}
}

// serves reports whether the issuer signs for the DNS name or IP address name.
func (li *localIssuer) serves(name string) bool {
	li.mu.Lock()
	defer li.mu.Unlock()
	if ip := net.ParseIP(name); ip != nil {
		return slices.ContainsFunc(li.names, func(n string) bool { return net.ParseIP(n).Equal(ip) })
	}
	return slices.Contains(li.names, name)
}

// Issue signs a leaf valid for 7 days (localLeafLifetime) with the CSR's key and names.
func (li *localIssuer) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("local ca: csr signature: %w", err)
	}
	for _, name := range csr.DNSNames {
		if !li.serves(name) {
			return nil, fmt.Errorf("local ca: %s is not a name local mode serves", name)
		}
	}
	for _, ip := range csr.IPAddresses {
		if !li.serves(ip.String()) {
			return nil, fmt.Errorf("local ca: %s is not an address local mode serves", ip)
		}
	}
	if len(csr.DNSNames)+len(csr.IPAddresses) == 0 || len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		return nil, errors.New("local ca: a csr must name only hosts and IP addresses")
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	cn := csr.Subject.CommonName
	if cn == "" && len(csr.DNSNames) > 0 {
		cn = csr.DNSNames[0]
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              csr.DNSNames,
		IPAddresses:           csr.IPAddresses,
		NotBefore:             now.Add(-localBackdate),
		NotAfter:              now.Add(cmp.Or(li.lifetime, localLeafLifetime)),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, li.ca.cert, csr.PublicKey, li.ca.key)
	if err != nil {
		return nil, fmt.Errorf("local ca: sign certificate: %w", err)
	}
	var chain bytes.Buffer
	if err := pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
		return nil, fmt.Errorf("local ca: encode certificate: %w", err)
	}
	return &certmagic.IssuedCertificate{Certificate: chain.Bytes()}, nil
}

// IssuerKey names the CA by its certificate's hash, so that leaves of a CA that was
// replaced are kept apart in storage (certmagic keys certificates by issuer) and never
// served again.
func (li *localIssuer) IssuerKey() string {
	sum := sha256.Sum256(li.ca.cert.Raw)
	return "signet_local_ca_" + hex.EncodeToString(sum[:8])
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}
