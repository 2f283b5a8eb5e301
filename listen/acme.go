package listen

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/signet-proxy/signet/config"
)

// newACME starts the HTTP-01 challenge server, then has certmagic obtain or load a
// certificate for every domain.
func newACME(ctx context.Context, cfg config.TLS, logger *slog.Logger, o Options) (_ *TLS, err error) {
	if len(cfg.Domains) == 0 {
		return nil, errors.New("tls mode acme needs at least one domain")
	}
	storage, err := storageDir(cfg)
	if err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	if cfg.CARoot != "" {
		if roots, err = loadRoots(cfg.CARoot); err != nil {
			return nil, err
		}
	}

	// Bind the challenge port first: certmagic, finding it taken, relies on this server
	// instead of starting its own, and a port we cannot bind fails here, clearly.
	chal, err := listenChallenge(ctx, cfg.HTTPChallengeListen, logger)
	if err != nil {
		return nil, err
	}
	t := &TLS{challenge: chal}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()

	t.magic, t.cache = newMagic(storage, cfg.Domains[0], logger)
	template := certmagic.ACMEIssuer{
		CA:           cfg.CA,
		Email:        cfg.Email,
		Agreed:       true, // configuring acme mode is the agreement (see doc.go)
		TrustedRoots: roots,
		// certmagic's solver tries ListenHost:AltHTTPPort, finds our server there and
		// leaves the challenge to it.
		ListenHost:              chal.host,
		AltHTTPPort:             chal.port,
		DisableTLSALPNChallenge: o.TLSALPNPort == 0,
		AltTLSALPNPort:          o.TLSALPNPort,
		Logger:                  t.magic.Logger,
	}
	if o.acmeIssuer != nil {
		o.acmeIssuer(&template)
	}
	iss := certmagic.NewACMEIssuer(t.magic, template)
	var issuer certmagic.Issuer = iss
	if cfg.Email == "" {
		issuer = unpromptedACMEIssuer{iss}
	}
	t.magic.Issuers = []certmagic.Issuer{issuer}
	chal.serve(iss.HTTPChallengeHandler(http.NotFoundHandler()))

	if err := t.manage(ctx, cfg.Domains); err != nil {
		return nil, fmt.Errorf("acme (ca %s): %w", cfg.CA, err)
	}
	t.config = serverConfig(t.magic, true)
	logger.Info("tls ready", slog.Any("domains", cfg.Domains), slog.String("ca", cfg.CA),
		slog.String("http_challenge_listen", chal.ln.Addr().String()))
	return t, nil
}

// unpromptedACMEIssuer is an ACMEIssuer whose PreCheck never prompts on stdin. With no
// e-mail configured, certmagic's interactive obtain (ManageSync) would print the CA's
// terms and read an address from stdin; a daemon must not.
type unpromptedACMEIssuer struct {
	*certmagic.ACMEIssuer
}

var (
	_ certmagic.PreChecker        = unpromptedACMEIssuer{}
	_ certmagic.Issuer            = unpromptedACMEIssuer{}
	_ certmagic.Revoker           = unpromptedACMEIssuer{}
	_ certmagic.RenewalInfoGetter = unpromptedACMEIssuer{}
)

// PreCheck runs ACMEIssuer's checks, never interactively.
func (u unpromptedACMEIssuer) PreCheck(ctx context.Context, names []string, _ bool) error {
	return u.ACMEIssuer.PreCheck(ctx, names, false)
}

// loadRoots reads the PEM roots to trust when talking to the ACME CA.
func loadRoots(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read acme ca_root: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("acme ca_root %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// challengeServer answers ACME HTTP-01 challenges on its own listener.
type challengeServer struct {
	ln   net.Listener
	host string // as configured ("" for all interfaces), for certmagic's ListenHost
	port int    // as bound
	srv  *http.Server
	done chan struct{} // closed when Serve returns; nil until serve
	log  *slog.Logger
}

// listenChallenge binds addr for the HTTP-01 server.
func listenChallenge(ctx context.Context, addr string, logger *slog.Logger) (*challengeServer, error) {
	if addr == "" {
		addr = ":80"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("http challenge listen %q: %w", addr, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for acme http challenges: %w", err)
	}
	_, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, err := strconv.Atoi(portStr)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen for acme http challenges: port of %s: %w", ln.Addr(), err)
	}
	return &challengeServer{ln: ln, host: host, port: port, log: logger}, nil
}

// serve starts answering on the listener, from a goroutine close waits for.
func (c *challengeServer) serve(h http.Handler) {
	c.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		IdleTimeout:       5 * time.Second,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
	}
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		if err := c.srv.Serve(c.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("acme http challenge server stopped", slog.Any("error", err))
		}
	}()
}

// close stops the server (or, if it never started, the listener) and waits for it.
func (c *challengeServer) close() error {
	if c.srv == nil {
		if err := c.ln.Close(); err != nil {
			return fmt.Errorf("close acme http challenge listener: %w", err)
		}
		return nil
	}
	// Challenge responses are tiny: closing at once loses nothing worth draining.
	err := c.srv.Close()
	<-c.done
	if err != nil {
		return fmt.Errorf("close acme http challenge server: %w", err)
	}
	return nil
}
