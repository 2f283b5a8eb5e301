package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/listen"
)

// caCert prints the certificate of the local CA (tls mode local), creating the CA if it
// does not exist yet, so that users can trust it before the first start.
func caCert(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ca-cert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (YAML); its tls.storage holds the CA")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tlsCfg := config.TLS{Mode: config.TLSLocal}
	if *configPath != "" {
		cfg, err := loadConfig(*configPath)
		if err != nil {
			return err
		}
		if cfg.TLS.Mode != config.TLSLocal {
			return errors.New("ca-cert: the config's tls.mode is not local, so signet keeps no CA of its own")
		}
		tlsCfg = cfg.TLS
	}
	pemBytes, err := listen.CACertificatePEM(tlsCfg)
	if err != nil {
		return fmt.Errorf("ca-cert: %w", err)
	}
	_, err = stdout.Write(pemBytes)
	return err
}
