package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/listen"
)

// caCert prints the certificate of the local CA (tls mode local), creating the CA if it
// does not exist yet, so that users can trust it before the first start. It needs the
// config that serve runs with: without --config (zero-config mode, plain HTTP) or with a
// tls.mode other than local there is no CA to print, and it creates none.
func caCert(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca-cert", "--config FILE",
		"Print the local CA's certificate (tls.mode local), for clients to trust.", stderr)
	configPath := fs.String("config", "", "config file (YAML) with tls.mode local; its tls.storage holds the CA")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("ca-cert: unexpected argument %q", fs.Arg(0))
	}
	if *configPath == "" {
		return errors.New("ca-cert: needs --config FILE with tls.mode local; without a config signet serves plain HTTP and keeps no CA")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if cfg.TLS.Mode != config.TLSLocal {
		return fmt.Errorf("ca-cert: the config's tls.mode is %s, not local, so signet keeps no CA of its own", cfg.TLS.Mode)
	}
	pemBytes, err := listen.CACertificatePEM(cfg.TLS)
	if err != nil {
		return fmt.Errorf("ca-cert: %w", err)
	}
	_, err = stdout.Write(pemBytes)
	return err
}
