// Command signet is a sidecar that re-signs plain S3 requests with short-lived credentials.
//
//	signet serve [--config FILE] [--listen ADDR] [--admin-listen ADDR] [--log-format text|json]
//	signet check [--config FILE]
//	signet version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp): // -h asked for the usage, which was printed
	case errors.Is(err, errNoCommand):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "signet:", err)
		os.Exit(1)
	}
}

// errNoCommand: signet was run without a command; the usage was printed.
var errNoCommand = errors.New("no command")

const usage = `signet: a SigV4 re-signing sidecar for S3-compatible storage

Usage:
  signet serve [--config FILE] [--listen ADDR] [--admin-listen ADDR] [--log-format text|json]
                                      run the sidecar
  signet check [--config FILE] [--timeout 30s]
                                      test each route's credentials against its upstream
  signet healthcheck [--addr 127.0.0.1:9001]
                                      ask a running signet's /healthz (for image HEALTHCHECKs)
  signet ca-cert --config FILE        print the local CA certificate (tls mode local)
  signet version                      print the version and commit

Run signet COMMAND -h for a command's flags.

With no --config, serve reads R2_ACCOUNT_ID, R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY
(and optionally R2_JURISDICTION) and proxies every bucket to that R2 account.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errNoCommand
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "check":
		return check(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:], stdout, stderr)
	case "ca-cert":
		return caCert(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "signet", buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// buildVersion is the version, from -X main.version when the build set it (make build,
// the image), else the module version Go recorded (a tag under go install, a pseudo-version
// in a checkout), followed by the commit when Go recorded one.
func buildVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(version, bi)
}

func versionOf(ldflagVersion string, bi *debug.BuildInfo) string {
	v := ldflagVersion
	if v == "" && bi != nil && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	if bi == nil {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += ", modified"
	}
	return v + " (commit " + rev + ")"
}
