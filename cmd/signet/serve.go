package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/internal/filewatch"
	"github.com/signet-proxy/signet/listen"
	"github.com/signet-proxy/signet/proxy"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("serve", "[--config FILE] [--listen ADDR] [--admin-listen ADDR] [--log-format text|json]",
		"Run the sidecar: plain S3 in on --listen, re-signed S3 out to each account's upstream.\n"+
			"Without --config, zero-config mode proxies every bucket to the R2 account of R2_ACCOUNT_ID,\n"+
			"R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY (optionally R2_JURISDICTION, R2_ENDPOINT).", stderr)
	configPath := fs.String("config", "", "config file (YAML); without it, zero-config mode from R2_* variables")
	listenFlag := fs.String("listen", "", "S3 listen address, overriding the config's listen (env "+envListen+")")
	adminFlag := fs.String("admin-listen", "", "admin listen address (/healthz, /readyz, /metrics) or off, overriding the config's admin_listen (env "+envAdminListen+")")
	logFormat := fs.String("log-format", "", "log format: text or json (default: the config's, else text)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	listenAddr, listenFrom := fromFlagOrEnv(*listenFlag, "--listen", envListen)
	adminAddr, adminFrom := fromFlagOrEnv(*adminFlag, "--admin-listen", envAdminListen)
	if listenAddr != "" {
		if err := config.CheckListen(listenAddr); err != nil {
			return fmt.Errorf("%s: %w", listenFrom, err)
		}
	}
	if adminAddr != "" {
		if err := config.CheckAdminListen(adminAddr); err != nil {
			return fmt.Errorf("%s: %w", adminFrom, err)
		}
	}

	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if listenAddr != "" {
		if err := cfg.CheckExposure(listenAddr); err != nil {
			return fmt.Errorf("%s: %w", listenFrom, err)
		}
	}
	if *logFormat != "" {
		cfg.Log.Format = *logFormat
	}
	lw := newLogWriter(stderr)
	defer lw.Close()
	logger, err := newLogger(lw, cfg.Log)
	if err != nil {
		return err
	}
	warnReadableSecrets(logger, *configPath, cfg)
	s := &server{path: *configPath, logger: logger, cfg: cfg, listenFlag: listenAddr, adminFlag: adminAddr}
	return s.run(ctx)
}

// Environment variables that stand in for serve's --listen and --admin-listen, for
// containers whose command line is the image's (the image sets both to all addresses).
const (
	envListen      = "SIGNET_LISTEN"
	envAdminListen = "SIGNET_ADMIN_LISTEN"
)

// fromFlagOrEnv is the flag's value, else the environment variable's, with the name of
// where it came from for error messages; "" when neither is set.
func fromFlagOrEnv(flagValue, flagName, envName string) (value, from string) {
	if flagValue != "" {
		return flagValue, flagName
	}
	if v := strings.TrimSpace(os.Getenv(envName)); v != "" {
		return v, envName
	}
	return "", ""
}

// server is one `signet serve`: its listeners, its live route table and its reloads.
type server struct {
	path       string // config file; "" in zero-config mode
	listenFlag string // --listen or SIGNET_LISTEN; "" for the config's
	adminFlag  string // --admin-listen or SIGNET_ADMIN_LISTEN; "" for the config's
	logger     *slog.Logger
	metrics    *proxy.Metrics
	handler    *proxy.Handler
	tls        *listen.TLS // nil when tls.mode is off
	budgets    *creds.Budgets

	mu  sync.Mutex // serialises reloads
	cfg *config.Config
}

// setupOptions are Setup's options for a table replacing previous (nil at start). The
// Cloudflare API budgets live as long as the process: a reload must not reset them.
func (s *server) setupOptions(previous *proxy.Table) func(*proxy.SetupOptions) {
	return func(o *proxy.SetupOptions) {
		o.Metrics, o.Previous = s.metrics, previous
		o.CacheOptions = append(o.CacheOptions, func(co *creds.CacheOptions) { co.Budgets = s.budgets })
	}
}

func (s *server) listenAddr() string {
	if s.listenFlag != "" {
		return s.listenFlag
	}
	return s.cfg.Listen
}

func (s *server) adminAddr() string {
	if s.adminFlag != "" {
		return s.adminFlag
	}
	return s.cfg.AdminListen
}

func (s *server) run(ctx context.Context) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = proxy.NewMetrics(reg, func() *proxy.Table {
		if s.handler == nil {
			return nil
		}
		return s.handler.Table()
	})
	s.budgets = creds.NewBudgets()
	table, err := proxy.Setup(s.cfg, s.logger, s.setupOptions(nil))
	if err != nil {
		return err
	}
	s.handler = proxy.New(table, proxy.Options{Logger: s.logger, Metrics: s.metrics, MaxConcurrent: s.cfg.MaxConcurrentRequests,
		BodyIdleTimeout: time.Duration(s.cfg.BodyIdleTimeout)})
	defer func() { s.handler.Table().Close() }()

	s.tls, err = listen.NewTLS(ctx, s.cfg.TLS, s.logger, func(o *listen.Options) {
		o.LocalNames = s.cfg.BucketHosts()
	})
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	defer s.tls.Close()
	ln, err := listen.Listen(ctx, s.listenAddr(), s.tls.Config(), func(o *listen.ListenOptions) {
		o.MaxConnsPerAddress = s.cfg.MaxConnectionsPerAddress
	})
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := newServer(s.handler, s.logger)
	// Every request's context comes from abortCtx: cancelling it is how a stop that ran out
	// of drain time aborts the requests still in flight. An upload blocked writing to an
	// upstream that stopped reading reads nothing from its client, so closing the client's
	// connection would never reach it; the cancelled context resets its upstream connection
	// (proxy.Handler.ServeHTTP), which fails the blocked write, and nothing partial is stored.
	abortCtx, abortRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer abortRequests()
	srv.BaseContext = func(net.Listener) context.Context { return abortCtx }
	srv.ConnState = listen.ConnStateHook(ln) // which connections are idle, for the per-address bound
	srv.RegisterOnShutdown(func() {          // runs once the listener is closed
		s.logger.Info("stopped accepting connections; draining requests in flight")
	})
	servers := []*http.Server{srv}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveUntilShutdown(srv, ln, "s3") })

	if s.adminAddr() != "off" {
		aln, err := net.Listen("tcp", s.adminAddr())
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin listen: %w", err)
		}
		admin := &http.Server{Handler: s.handler.Admin(reg), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		servers = append(servers, admin)
		g.Go(func() error { return serveUntilShutdown(admin, aln, "admin") })
		s.logger.Info("admin listening", slog.String("addr", aln.Addr().String()))
	}
	s.logger.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("tls", s.cfg.TLS.Mode), slog.Bool("zero_config", s.cfg.ZeroConfig),
		slog.Int("routes", len(s.cfg.Buckets)), slog.String("version", buildVersion()))

	// From here on a reload may replace s.cfg at any time (under s.mu): what the rest of
	// run needs of the starting config is read now. shutdown_timeout is restart-only.
	timeout := time.Duration(s.cfg.ShutdownTimeout)
	startKeyFiles := keyFiles(s.cfg)
	if s.path != "" {
		// The config and the key files it names, which are read once, at setup: a rotated
		// one (a Kubernetes secret update) needs a reload too. Those a later config adds are
		// re-read at each reload.
		w, err := filewatch.New(append([]string{s.path}, startKeyFiles...), func() { s.reload(gctx) },
			func(o *filewatch.Options) {
				o.OnError = func(err error) { s.logger.Warn("watch config files", slog.String("error", err.Error())) }
			})
		if err != nil {
			return fmt.Errorf("watch config: %w", err)
		}
		g.Go(func() error {
			<-gctx.Done()
			return w.Close()
		})
		g.Go(func() error {
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-hup:
					s.reload(gctx)
				}
			}
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		s.logger.Info("shutting down", slog.Duration("drain_timeout", timeout))
		s.handler.Drain()
		// The admin listener goes last, whatever happens to the drain: /readyz says
		// "draining" meanwhile, and a server left running would keep g.Wait from returning.
		defer func() {
			actx, cancel := context.WithTimeout(context.Background(), abortTimeout)
			defer cancel()
			for _, srv := range servers[1:] {
				if err := srv.Shutdown(actx); err != nil {
					_ = srv.Close()
				}
			}
		}()
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err == nil {
			return nil
		}
		// Exiting now would end the upstream connections of uploads still in flight with a
		// FIN, which a lenient server takes for the end of the body. Aborting them resets
		// those connections instead; then they are waited for, for at most abortTimeout.
		s.logger.Warn("drain time ran out; aborting the requests still in flight", slog.Duration("drain_timeout", timeout))
		abortRequests()
		_ = srv.Close()
		actx, cancel := context.WithTimeout(context.Background(), abortTimeout)
		defer cancel()
		if err := s.handler.Wait(actx); err != nil {
			// Uploads still in flight have SO_LINGER 0 upstream: the exit resets them.
			return fmt.Errorf("drain time (%s) ran out and aborting the requests in flight did not end them within %s: %w", timeout, abortTimeout, err)
		}
		return fmt.Errorf("drain time (%s) ran out: requests in flight were aborted", timeout)
	})
	return g.Wait()
}

// keyFiles lists, once each, the files cfg's accounts and clients read keys from at setup.
func keyFiles(cfg *config.Config) []string {
	var files []string
	for _, a := range cfg.Accounts {
		files = append(files, a.KeyFiles()...)
	}
	for _, c := range cfg.Clients {
		if c.SecretAccessKeyFile != "" {
			files = append(files, c.SecretAccessKeyFile)
		}
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// abortTimeout bounds how long requests cancelled at the end of a drain take to return,
// and the admin listener's drain.
const abortTimeout = 5 * time.Second

// serveUntilShutdown serves ln and returns nil once Shutdown stopped it, or why it failed.
func serveUntilShutdown(srv *http.Server, ln net.Listener, name string) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s listener %s: %w", name, ln.Addr(), err)
	}
	return nil
}

// reload loads the config file again and, if it is valid, swaps in its routes: requests
// in flight finish on the old table, and accounts whose settings did not change keep their
// credentials. An invalid file is logged with every error and the old config keeps serving.
// In tls mode local, the hosts of newly routed buckets get certificates before the new
// routes are swapped in; ctx bounds that.
func (s *server) reload(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := config.Load(s.path)
	if err == nil {
		var table *proxy.Table
		table, err = proxy.Setup(next, s.logger, s.setupOptions(s.handler.Table()))
		if err == nil {
			if changed := restartOnly(s.cfg, next); len(changed) > 0 {
				s.logger.Warn("config reload: these changes take effect only after a restart; the routes, accounts and clients were applied",
					slog.String("restart_needed_for", strings.Join(changed, ", ")))
			}
			s.addTLSNames(ctx, next) // before the swap, so new routes go live with their certificates
			old := s.handler.Swap(table)
			old.Retire(table)
			next.Listen, next.AdminListen, next.TLS, next.ShutdownTimeout, next.Log = s.cfg.Listen, s.cfg.AdminListen, s.cfg.TLS, s.cfg.ShutdownTimeout, s.cfg.Log
			next.MaxConcurrentRequests, next.BodyIdleTimeout, next.MaxConnectionsPerAddress = s.cfg.MaxConcurrentRequests, s.cfg.BodyIdleTimeout, s.cfg.MaxConnectionsPerAddress
			s.cfg = next
			s.metrics.Reloaded(nil)
			s.logger.Info("config reloaded", slog.String("config", s.path), slog.Int("routes", len(next.Buckets)))
			return
		}
	}
	s.metrics.Reloaded(err)
	s.logger.Error("config reload rejected; the previous config keeps serving", slog.String("config", s.path), slog.String("errors", err.Error()))
}

// addTLSNames has tls mode local issue certificates for the bucket hosts next routes and
// the running listener does not serve yet. A failure is logged: those hosts keep only
// *.localhost, which Go clients accept, until the next reload or restart.
func (s *server) addTLSNames(ctx context.Context, next *config.Config) {
	ctx, cancel := context.WithTimeout(ctx, tlsNamesTimeout)
	defer cancel()
	if err := s.tls.AddNames(ctx, next.BucketHosts()); err != nil {
		s.logger.Error("config reload: certificates for new bucket hosts", slog.Any("error", err))
	}
}

// tlsNamesTimeout bounds issuing certificates for new bucket hosts on a reload, which holds
// up later reloads. Local issuance takes milliseconds; the wait is for storage's lock.
const tlsNamesTimeout = time.Minute

// restartOnly lists the settings next changes that a running server cannot take on.
func restartOnly(cur, next *config.Config) []string {
	var changed []string
	for _, c := range []struct {
		name string
		diff bool
	}{
		{"listen", cur.Listen != next.Listen},
		{"admin_listen", cur.AdminListen != next.AdminListen},
		{"tls", !reflect.DeepEqual(cur.TLS, next.TLS)},
		{"shutdown_timeout", cur.ShutdownTimeout != next.ShutdownTimeout},
		{"max_concurrent_requests", cur.MaxConcurrentRequests != next.MaxConcurrentRequests},
		{"body_idle_timeout", cur.BodyIdleTimeout != next.BodyIdleTimeout},
		{"max_connections_per_address", cur.MaxConnectionsPerAddress != next.MaxConnectionsPerAddress},
		{"log", cur.Log != next.Log},
	} {
		if c.diff {
			changed = append(changed, c.name)
		}
	}
	return changed
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.FromEnv(os.LookupEnv)
	}
	cfg, err := config.Load(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config file %s does not exist (leave out --config for zero-config mode from R2_* variables)", path)
	case errors.Is(err, config.ErrRead):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("invalid config:\n%w", err)
	}
	return cfg, nil
}

func newLogger(w io.Writer, c config.Log) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "json":
		// Durations in seconds, as Prometheus and log tooling expect, not slog's raw
		// nanoseconds.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				return slog.Float64(a.Key, a.Value.Duration().Seconds())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q is not text or json", c.Format)
	}
}

// warnReadableSecrets warns about secrets that other users of the machine can read: the
// config file when it holds a secret itself, and every secret file it names.
func warnReadableSecrets(logger *slog.Logger, path string, cfg *config.Config) {
	files := cfg.SecretFiles()
	if path != "" && cfg.HasInlineSecrets() {
		files = append(files, path)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue // reported where the file is read
		}
		if perm := fi.Mode().Perm(); perm&0o044 != 0 {
			logger.Warn("a file holding secrets is readable by other users; chmod 600 it",
				slog.String("file", f), slog.String("mode", perm.String()))
		}
	}
}

// newServer is the S3 listener's server: bounded header reading (a slow header trickle is
// cut after ReadHeaderTimeout), bounded header size, idle connections closed. It sets no
// WriteTimeout or ReadTimeout: they would cut large downloads and uploads.
func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}
