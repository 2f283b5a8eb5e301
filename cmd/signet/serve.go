package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/proxy"
)

// drainTimeout bounds how long a stopping server waits for requests in flight.
const drainTimeout = 30 * time.Second

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (YAML); without it, zero-config mode from R2_* variables")
	listen := fs.String("listen", "", "listen address, overriding the config's listen")
	logFormat := fs.String("log-format", "", "log format: text or json (default: the config's, else text)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}

	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if *listen != "" {
		if _, _, err := net.SplitHostPort(*listen); err != nil {
			return fmt.Errorf("--listen %q is not host:port", *listen)
		}
		cfg.Listen = *listen
	}
	if *logFormat != "" {
		cfg.Log.Format = *logFormat
	}
	logger, err := newLogger(stderr, cfg.Log)
	if err != nil {
		return err
	}

	table, err := proxy.Setup(cfg, logger)
	if err != nil {
		return err
	}
	defer table.Close()
	h := proxy.New(table, proxy.Options{Logger: logger})

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		// No WriteTimeout or ReadTimeout: they would cut large downloads and uploads.
	}
	logger.Info("listening", slog.String("addr", ln.Addr().String()), slog.Bool("zero_config", cfg.ZeroConfig),
		slog.Int("routes", len(cfg.Buckets)), slog.String("version", buildVersion()))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve %s: %w", cfg.Listen, err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", slog.Duration("drain_timeout", drainTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served // Serve returns ErrServerClosed as soon as Shutdown starts
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	return nil
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.FromEnv(os.LookupEnv)
	}
	cfg, err := config.Load(path)
	if err != nil {
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
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q is not text or json", c.Format)
	}
}
