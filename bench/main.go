// Command bench measures what signet costs on top of the least a re-signing proxy must do
// (issue 7). It starts an upstream and three targets on loopback, measures them in one run,
// interleaved, and prints a markdown table of absolute figures and ratios.
//
//	go run ./bench                    # full run: null upstream and versitygw, a few minutes
//	go run ./bench -quick             # one short round, under a minute
//	go run ./bench -upstream null -large-size 256MiB -rounds 5 -out bench.md
//	go run ./bench -h                 # every flag
//
// # Targets
//
//   - direct: the harness signs each request itself (UNSIGNED-PAYLOAD, aws-sdk-go-v2's v4
//     signer with DisableURIPathEscaping) and sends it straight to the upstream.
//   - bare hop: the yardstick, a minimal httputil.ReverseProxy that strips the client's
//     authentication and re-signs with the same signer and static credentials, with
//     256 KiB pooled copy buffers and 1024 idle upstream connections (as issue 16's
//     independent harness set it), nothing else. It is this program re-executed with the
//     hidden flag -role barehop; to TLS upstreams it speaks HTTP/1.1 (-bare-h2: HTTP/2).
//   - signet: the real binary, built by the harness from ./cmd/signet (or -signet-bin),
//     run as `signet serve --config FILE --listen 127.0.0.1:0` with its request log on and
//     written to a file, so that logging costs what it costs in production.
//
// Every proxy process is started fresh for each measurement, so its peak RSS (VmHWM, a
// high-water mark over the process's life) belongs to that one scenario, and stopped with
// SIGTERM afterwards.
//
// # Upstreams
//
//   - null: this program with -role null, a separate process that discards PUT bodies and
//     serves GET bodies from a deterministic generator, checking no signature: what is
//     measured in front of it is the proxy's own cost.
//   - versitygw: a real S3 server on the posix backend that verifies every signature
//     ($SIGNET_VERSITYGW, else $SIGNET_TOOLS/versitygw-v1.8.0/versitygw, else
//     <user cache dir>/signet-tools/versitygw-v1.8.0/versitygw; `make tools` installs it).
//     Its figures include its disk and checksum work, which bound it near 150 MB/s here, so
//     its large objects are at most 256 MiB unless -versitygw-large-size says otherwise.
//
// null-tls and versitygw-tls are the same served over TLS with a certificate the harness
// makes for the run; signet trusts it through SSL_CERT_FILE.
//
// # Scenarios and figures
//
// Small objects (-small-size, 4 KiB) GET and PUT at each -concurrency (1 and 32): req/s,
// p50 and p99 latency, and proxy CPU µs per request. Large objects (-large-size, 1 GiB), one
// PUT and one GET per measurement: MB/s, time to first byte for the GET, proxy CPU s per GB
// and proxy peak RSS. parallel-put and parallel-get run -parallel transfers of
// -parallel-size at once; chunked-put and trailer-put upload -large-size as aws-chunked
// bodies, chunk-signed (minio-go's framing) and unsigned with a CRC32 trailer (the JS
// SDK's), on the null upstreams only; the report compares signet's CPU per GB on them with
// its plain PUT's. Proxy CPU is utime+stime from /proc/<pid>/stat (10 ms ticks) over the
// measurement. Every GET body is checked byte for byte against content regenerated from the
// object's size; a failed request or a wrong byte stops the run.
//
// # Noise
//
// On a 2-core machine whose timing varies 20–50 % between runs, only ratios within one run
// mean anything. Each round measures every scenario on every target back to back, rotating
// the targets' order from round to round; a cell is the median over rounds, a ratio the
// median of the per-round ratios. The report also says how much CPU other processes took
// meanwhile (/proc/stat less the run's own processes): a run that shared the machine with
// a test suite shows it.
//
// # Profiling
//
// -signet-bin runs a prebuilt signet instead, e.g. a profiling variant built from a copy
// of the tree. -b-bin and -b-log-level add a fourth target, signet-b, measured in the same
// rounds: a signet binary before and after a change, or with and without its request log;
// -b-env runs it with extra environment (GODEBUG=http2client=0: HTTP/1.1 against HTTP/2).
// With SIGNET_BENCH_CPUPROFILE=DIR in the environment the bare hop and the null upstream
// write DIR/<role>-<pid>.pprof, and signet, built with a profiling overlay (see
// profileSource), DIR/signet-<pid>.pprof.
//
// Every process and goroutine the harness starts is stopped before it exits, also on
// Ctrl-C and on error; every loop is bounded in time and count; nothing leaves loopback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-role" {
		if err := runRole(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[2], err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the harness's flags.
type options struct {
	quick        bool
	rounds       int
	duration     time.Duration
	warmup       time.Duration
	smallSize    int64
	largeSize    int64
	vgwLargeSize int64
	concurrency  []int
	upstreams    []string
	targets      []string
	scenarios    []string
	maxRequests  int64
	signetBin    string
	signetLog    string
	bBin         string   // signet-b: another binary (default: signet's)
	bLog         string   // signet-b: another log level (default: signet's)
	bEnv         []string // signet-b: extra environment, e.g. GODEBUG=http2client=0
	bareH2       bool     // the bare hop offers HTTP/2 to TLS upstreams
	parallel     int      // transfers at once in the parallel scenarios
	parallelSize int64    // each one's size
	keep         bool
	out          string
	args         []string // as given, for the report
}

// defaultVGWLargeMax caps versitygw's large objects unless -versitygw-large-size says
// otherwise.
const defaultVGWLargeMax = 256 << 20

var (
	allUpstreams = []string{"null", "versitygw", "null-tls", "versitygw-tls"}
	allTargets   = []string{"direct", "barehop", "signet", "signet-b"}
	allScenarios = []string{"small-get", "small-put", "large-put", "large-get", "parallel-put", "parallel-get", "chunked-put", "trailer-put"}
	// defaultScenarios leave out the parallel and aws-chunked ones, which take longer.
	defaultScenarios = []string{"small-get", "small-put", "large-put", "large-get"}
)

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{smallSize: 4 << 10, largeSize: 1 << 30, args: args}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.quick, "quick", false, "one short round with 256 MiB large objects, under a minute (flags given explicitly still win)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each measures every scenario on every target")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "measured time per small-object scenario and target")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured load before each small-object measurement")
	fs.Var((*byteSize)(&o.smallSize), "small-size", "small object size (4KiB, 64KiB, 4096, ...)")
	fs.Var((*byteSize)(&o.largeSize), "large-size", "large object size")
	fs.Var((*byteSize)(&o.vgwLargeSize), "versitygw-large-size", "large object size with versitygw (default: -large-size, at most 256 MiB)")
	conc := fs.String("concurrency", "1,32", "concurrency levels of the small-object scenarios")
	ups := fs.String("upstream", "both", "null, versitygw or both")
	targets := fs.String("targets", "direct,barehop,signet", "targets to measure: direct, barehop, signet, signet-b (added by -b-bin or -b-log-level)")
	scen := fs.String("scenarios", strings.Join(defaultScenarios, ","), "scenarios to run: "+strings.Join(allScenarios, ", "))
	fs.IntVar(&o.parallel, "parallel", 32, "transfers at once in parallel-put and parallel-get")
	o.parallelSize = 64 << 20
	fs.Var((*byteSize)(&o.parallelSize), "parallel-size", "size of each transfer in parallel-put and parallel-get")
	fs.BoolVar(&o.bareH2, "bare-h2", false, "the bare hop offers HTTP/2 to TLS upstreams (default: HTTP/1.1)")
	bEnv := fs.String("b-env", "", "adds target signet-b: signet with this extra environment, comma-separated KEY=VALUE (e.g. GODEBUG=http2client=0)")
	fs.Int64Var(&o.maxRequests, "max-requests", 5_000_000, "bound on requests per measurement")
	fs.StringVar(&o.signetBin, "signet-bin", "", "run this signet binary instead of building ./cmd/signet")
	fs.StringVar(&o.signetLog, "signet-log-level", "info", "signet's log.level: info logs every request, as in production; warn measures signet without its request log")
	fs.StringVar(&o.bBin, "b-bin", "", "adds target signet-b: this signet binary, measured interleaved with signet (A/B of a change)")
	fs.StringVar(&o.bLog, "b-log-level", "", "adds target signet-b: signet with this log level (e.g. warn: the request log's cost)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, configs, versitygw data)")
	fs.StringVar(&o.out, "out", "", "also write the markdown report to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./bench [flags]   (see the package comment: go doc ./bench)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["duration"] {
			o.duration = time.Second
		}
		if !set["warmup"] {
			o.warmup = 250 * time.Millisecond
		}
		if !set["large-size"] {
			o.largeSize = 256 << 20
		}
	}
	if o.vgwLargeSize == 0 {
		// versitygw stores to disk and hashes every byte: about 150 MB/s here, so 1 GiB
		// would add minutes and tell nothing a smaller object does not.
		o.vgwLargeSize = min(o.largeSize, defaultVGWLargeMax)
	}
	var err error
	if o.concurrency, err = parseInts(*conc); err != nil {
		return nil, fmt.Errorf("-concurrency: %w", err)
	}
	if *ups == "both" {
		*ups = strings.Join(allUpstreams, ",")
	}
	if o.upstreams, err = parseList(*ups, allUpstreams); err != nil {
		return nil, fmt.Errorf("-upstream: %w", err)
	}
	for kv := range strings.SplitSeq(*bEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			if !strings.Contains(kv, "=") {
				return nil, fmt.Errorf("-b-env %q: want KEY=VALUE", kv)
			}
			o.bEnv = append(o.bEnv, kv)
		}
	}
	if (o.bBin != "" || o.bLog != "" || o.bEnv != nil) && !strings.Contains(*targets, "signet-b") {
		*targets += ",signet-b"
	}
	if o.bLog == "" {
		o.bLog = o.signetLog
	}
	if o.targets, err = parseList(*targets, allTargets); err != nil {
		return nil, fmt.Errorf("-targets: %w", err)
	}
	if o.scenarios, err = parseList(*scen, allScenarios); err != nil {
		return nil, fmt.Errorf("-scenarios: %w", err)
	}
	switch {
	case o.rounds < 1 || o.rounds > 100:
		return nil, fmt.Errorf("-rounds %d: want 1 to 100", o.rounds)
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return nil, fmt.Errorf("-duration %v: want more than 0 and at most 10m", o.duration)
	case o.warmup < 0 || o.warmup > time.Minute:
		return nil, fmt.Errorf("-warmup %v: want 0 to 1m", o.warmup)
	case o.smallSize <= 0 || o.smallSize > 64<<20:
		return nil, fmt.Errorf("-small-size %d: want 1 byte to 64 MiB", o.smallSize)
	case o.largeSize <= 0 || o.vgwLargeSize <= 0 || max(o.largeSize, o.vgwLargeSize) > 64<<30:
		return nil, errors.New("large sizes: want 1 byte to 64 GiB")
	case !contains([]string{"debug", "info", "warn", "error"}, o.signetLog) || !contains([]string{"debug", "info", "warn", "error"}, o.bLog):
		return nil, fmt.Errorf("log levels %q, %q: want debug, info, warn or error", o.signetLog, o.bLog)
	case o.parallel < 1 || o.parallel > 256 || o.parallelSize < 1:
		return nil, fmt.Errorf("-parallel %d, -parallel-size %d: want 1 to 256 transfers of at least a byte", o.parallel, o.parallelSize)
	case o.maxRequests < 1:
		return nil, fmt.Errorf("-max-requests %d: want at least 1", o.maxRequests)
	}
	for _, c := range o.concurrency {
		if c < 1 || c > 1024 {
			return nil, fmt.Errorf("-concurrency %d: want 1 to 1024", c)
		}
	}
	return o, nil
}

// parseList splits a comma-separated list and checks each entry against known, keeping
// known's order.
func parseList(s string, known []string) ([]string, error) {
	want := map[string]bool{}
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !contains(known, v) {
			return nil, fmt.Errorf("unknown %q (known: %s)", v, strings.Join(known, ", "))
		}
		want[v] = true
	}
	var out []string
	for _, k := range known {
		if want[k] {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty")
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func parseInts(s string) ([]int, error) {
	var out []int
	for v := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// byteSize is a flag of bytes: a plain number or one with KiB, MiB or GiB (K, M, G and
// KB, MB, GB are read as binary too).
type byteSize int64

func (b *byteSize) String() string { return formatBytes(int64(*b)) }

func (b *byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size such as 4096, 4KiB or 1GiB", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// formatBytes writes n in the largest binary unit that divides it, else in bytes.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	default:
		return strconv.FormatInt(n, 10) + " B"
	}
}
