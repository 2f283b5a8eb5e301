package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/proxy"
)

// clockWarning is the clock offset `check` warns about; SigV4 fails at 15 minutes.
const clockWarning = time.Minute

// check validates the config, gets credentials for every route and sends each bucket a
// cheap signed request, printing a table. It fails if any route fails.
func check(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "[--config FILE] [--timeout 30s]",
		"Check each route once: get its credentials and send one signed request upstream (a cheap listing).", stderr)
	configPath := fs.String("config", "", "config file (YAML); without it, zero-config mode from R2_* variables")
	timeout := fs.Duration("timeout", 30*time.Second, "time allowed for each route")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	table, err := proxy.Setup(cfg, logger)
	if err != nil {
		return err
	}
	defer table.Close()
	h := proxy.New(table, proxy.Options{Logger: logger})

	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BUCKET\tACCOUNT\tJURISDICTION\tENDPOINT\tCREDENTIALS\tEXPIRES\tRESULT")
	failed := 0
	var warnings []string
	for _, r := range table.Routes() {
		up := r.Upstream
		source := up.Source
		row := func(expires, result string) {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Pattern, up.Account, up.Jurisdiction, up.URL, source, expires, result)
		}
		if r.IsGlob() {
			pctx, cancel := context.WithTimeout(ctx, *timeout)
			n, err := h.ProbeGlob(pctx, r)
			cancel()
			switch {
			case errors.Is(err, proxy.ErrNoProbe):
				row("-", "skipped: "+err.Error())
			case err != nil:
				failed++
				row("-", "FAIL: list buckets: "+timedOut(err, *timeout))
			default:
				row("-", fmt.Sprintf("ok: the upstream lists %d matching bucket(s)", n))
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, *timeout)
		res := h.Probe(pctx, r.Pattern)
		cancel()
		if up.Source == config.SourceAWS && res.Source != "" {
			// Which provider of the SDK's chain answered, as the SDK names it.
			source += " (" + res.Source + ")"
		}
		expires := "never"
		switch {
		case !res.Expires.IsZero():
			expires = res.Expires.UTC().Format(time.RFC3339)
		case res.Source == "": // no credentials came
			expires = "-"
		}
		if res.Err != nil {
			failed++
			row(expires, "FAIL: "+timedOut(res.Err, *timeout))
			continue
		}
		row(expires, "ok")
		if res.ClockOffset > clockWarning || res.ClockOffset < -clockWarning {
			warnings = append(warnings, fmt.Sprintf("warning: %s's clock differs from ours by %s; SigV4 fails beyond 15m", up.URL, res.ClockOffset))
		}
	}
	w.Flush()
	for _, wmsg := range warnings {
		fmt.Fprintln(stdout, wmsg)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d routes failed", failed, len(table.Routes()))
	}
	return nil
}

// timedOut describes err, saying which limit ran out when it is a timeout.
func timedOut(err error, limit time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s (--timeout): %v", limit, err)
	}
	return err.Error()
}
