package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// machine describes where the run happened.
type machine struct {
	cpus    int
	model   string
	memory  string
	kernel  string
	goVer   string
	signet  string
	started time.Time
}

func describeMachine(ctx context.Context) machine {
	m := machine{cpus: runtime.NumCPU(), model: "unknown", memory: "unknown", kernel: "unknown",
		goVer: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, started: time.Now()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if n, err := parseStatusKB(b, "MemTotal"); err == nil {
			m.memory = fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.goVer = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	return m
}

// signetRevision is the commit signet was built from, marked dirty when the tree differs.
func signetRevision(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown revision"
	}
	return strings.TrimSpace(string(out))
}

// result holds one upstream's samples: samples[scenario id][target][round].
type result struct {
	upstream  string
	largeSize int64
	scenarios []scenario
	targets   []string
	samples   map[string]map[string][]sample
}

func newResult(upstream string, largeSize int64, plan []scenario, targets []string, rounds int) *result {
	r := &result{upstream: upstream, largeSize: largeSize, scenarios: plan, targets: targets, samples: map[string]map[string][]sample{}}
	for _, sc := range plan {
		r.samples[sc.id] = map[string][]sample{}
		for _, t := range targets {
			r.samples[sc.id][t] = make([]sample, rounds)
		}
	}
	return r
}

// metric is one row of the report.
type metric struct {
	name      string
	value     func(sample) float64
	format    func(float64) string
	proxyOnly bool // meaningless for direct
	spread    bool // show ± half the range over rounds
	// check states the target for the row, given the medians and the median
	// signet/bare-hop ratio; nil: no target.
	check func(signet, direct, ratio float64) (ok bool, text string)
}

func smallMetrics() []metric {
	return []metric{
		{name: "req/s", value: sample.reqPerSec, format: fmtCount, spread: true,
			check: func(_, _, r float64) (bool, string) { return r >= 0.9, "≥ 0.90× bare hop" }},
		{name: "p50 latency ms", value: func(s sample) float64 { return ms(s.p50) }, format: fmtSig},
		{name: "p99 latency ms", value: func(s sample) float64 { return ms(s.p99) }, format: fmtSig},
		{name: "proxy CPU µs/req", value: func(s sample) float64 { return cpuOrNaN(s, us(s.proxyCPU)/float64(s.requests)) }, format: fmtSig, proxyOnly: true,
			check: func(_, _, r float64) (bool, string) { return r <= 1.05, "≤ 1.05× bare hop" }},
		{name: "proxy peak RSS MiB", value: func(s sample) float64 { return mib(s.proxyRSS) }, format: fmtSig, proxyOnly: true,
			check: func(v, _, _ float64) (bool, string) { return v <= 64, "≤ 64 MiB" }},
	}
}

func largeMetrics(sc scenario) []metric {
	rss := 64.0
	if sc.conc > 1 {
		rss = 128
	}
	ms := []metric{
		{name: "MB/s", value: sample.mbPerSec, format: fmtCount, spread: true,
			check: func(_, _, r float64) (bool, string) { return r >= 1.0, "≥ 1.0× bare hop" }},
	}
	if sc.method == "GET" && sc.conc == 1 {
		ms = append(ms, metric{name: "time to first byte ms", value: func(s sample) float64 { return float64(s.ttfb) / 1e6 }, format: fmtSig,
			check: func(v, d, _ float64) (bool, string) { return v-d <= 5, "≤ direct + 5 ms" }})
	}
	return append(ms,
		metric{name: "proxy CPU s/GB", value: func(s sample) float64 { return cpuOrNaN(s, s.proxyCPU.Seconds()/(float64(s.bytes)/1e9)) }, format: fmtSig, proxyOnly: true,
			check: func(_, _, r float64) (bool, string) { return r <= 1.0, "≤ 1.0× bare hop" }},
		metric{name: "proxy peak RSS MiB", value: func(s sample) float64 { return mib(s.proxyRSS) }, format: fmtSig, proxyOnly: true,
			check: func(v, _, _ float64) (bool, string) { return v <= rss, fmt.Sprintf("≤ %.0f MiB", rss) }},
	)
}

// minCPU is the least CPU time a figure is derived from: five 10 ms ticks of
// /proc/<pid>/stat. Below it a measurement is too short to say (use a longer -duration or
// a larger -large-size).
const minCPU = 50 * time.Millisecond

func cpuOrNaN(s sample, v float64) float64 {
	if s.proxyCPU < minCPU {
		return math.NaN()
	}
	return v
}

func writeReport(w io.Writer, m machine, o *options, results []*result) {
	fmt.Fprintf(w, "## signet benchmark, %s\n\n", m.started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| machine | %d CPUs (nproc), %s, %s memory, Linux %s |\n", m.cpus, m.model, m.memory, m.kernel)
	fmt.Fprintf(w, "| Go | %s, GOMAXPROCS %d |\n", m.goVer, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "| signet | %s; %s |\n", m.signet, logNote(o.signetLog))
	if contains(o.targets, "signet-b") {
		bin := "the same binary"
		if o.bBin != "" {
			bin = "prebuilt " + o.bBin
		}
		fmt.Fprintf(w, "| signet B | %s; %s |\n", bin, logNote(o.bLog))
	}
	fmt.Fprintf(w, "| run | `go run ./bench%s`: %d round(s), target order rotated each round; small objects %v warm-up + %v measured per scenario and target; large objects one transfer per measurement after one small GET; a fresh proxy process per measurement |\n",
		flagsLine(o), o.rounds, o.warmup, o.duration)
	fmt.Fprintf(w, "\nCells are medians over rounds (± half the range over rounds for throughput); ratios are medians of per-round ratios. ")
	fmt.Fprintf(w, "MB = 10⁶ bytes, GB = 10⁹ bytes. Proxy CPU is the proxy process's utime+stime (/proc/<pid>/stat, 10 ms ticks) during the measurement; ")
	fmt.Fprintf(w, "a CPU figure resting on less than %v of CPU is shown as —. Peak RSS is the proxy's VmHWM. Timing on this machine varies 20–50 %% between runs: compare ratios within one run only.\n", minCPU)
	for _, r := range results {
		writeTable(w, r)
	}
}

func logNote(level string) string {
	if level == "info" || level == "debug" {
		return "request log on (text, to a file)"
	}
	return "log level " + level + ": request log OFF"
}

// flagsLine is the command line's flags, as given, for the report.
func flagsLine(o *options) string {
	var b strings.Builder
	for _, a := range o.args {
		b.WriteString(" ")
		b.WriteString(a)
	}
	return b.String()
}

func writeTable(w io.Writer, r *result) {
	fmt.Fprintf(w, "\n### %s upstream\n\n", r.upstream)
	if strings.HasPrefix(r.upstream, "null") {
		fmt.Fprintf(w, "The harness's null S3 endpoint (a separate process; no signature checks): the proxy's own cost.")
	} else {
		fmt.Fprintf(w, "versitygw on the posix backend, verifying every signature; its disk and checksum work are in every figure.")
	}
	if strings.HasSuffix(r.upstream, "-tls") {
		fmt.Fprintf(w, " Served over TLS with a test certificate (Go's server offers HTTP/2 and HTTP/1.1; versitygw HTTP/1.1 only).")
	}
	fmt.Fprintf(w, "\n\n")
	// What other processes took: on average over the section, and at most in a single
	// measurement long enough for 10 ms ticks to mean something.
	var other, elapsed time.Duration
	peak := 0.0
	for _, byTarget := range r.samples {
		for _, ss := range byTarget {
			for _, s := range ss {
				other += s.otherCPU
				elapsed += s.elapsed
				if s.elapsed >= 500*time.Millisecond {
					peak = max(peak, s.otherCores())
				}
			}
		}
	}
	fmt.Fprintf(w, "Other processes on this machine kept %.2f cores busy on average (at most %.2f in one measurement) of the %d during these measurements; above a few tenths, the run competed with them.\n\n",
		other.Seconds()/elapsed.Seconds(), peak, runtime.NumCPU())
	has := func(t string) bool { return contains(r.targets, t) }
	// Columns: every target measured, then the ratios that exist among them.
	type ratioCol struct{ num, den string }
	var ratios []ratioCol
	for _, rc := range []ratioCol{{"signet", "barehop"}, {"signet", "direct"}, {"signet-b", "barehop"}, {"signet-b", "signet"}} {
		if has(rc.num) && has(rc.den) {
			ratios = append(ratios, rc)
		}
	}
	fmt.Fprintf(w, "| scenario | metric |")
	for _, t := range r.targets {
		fmt.Fprintf(w, " %s |", targetName(t))
	}
	for _, rc := range ratios {
		fmt.Fprintf(w, " %s / %s |", targetName(rc.num), targetName(rc.den))
	}
	fmt.Fprintf(w, " target |\n|---|---|%s%s---|\n", strings.Repeat("--:|", len(r.targets)), strings.Repeat("--:|", len(ratios)))
	for _, sc := range r.scenarios {
		ms := smallMetrics()
		if sc.large {
			ms = largeMetrics(sc)
		}
		for i, mt := range ms {
			name := ""
			if i == 0 {
				name = "**" + sc.name + "**"
			}
			vals := map[string][]float64{}
			for _, t := range r.targets {
				for _, s := range r.samples[sc.id][t] {
					vals[t] = append(vals[t], mt.value(s))
				}
			}
			cell := func(t string) string {
				if mt.proxyOnly && t == "direct" {
					return "—"
				}
				v := median(vals[t])
				c := mt.format(v)
				if mt.spread && len(vals[t]) > 1 && v > 0 {
					c += fmt.Sprintf(" ±%.0f%%", 50*(slices.Max(vals[t])-slices.Min(vals[t]))/v)
				}
				return c
			}
			// ratio is the median of the per-round ratios num/den.
			ratio := func(num, den string) float64 {
				if !has(num) || !has(den) || (mt.proxyOnly && den == "direct") {
					return math.NaN()
				}
				var rs []float64
				for i, v := range vals[num] {
					rs = append(rs, v/vals[den][i])
				}
				if x := median(rs); !math.IsInf(x, 0) {
					return x
				}
				return math.NaN() // e.g. CPU below one 10 ms tick
			}
			fmt.Fprintf(w, "| %s | %s |", name, mt.name)
			for _, t := range r.targets {
				fmt.Fprintf(w, " %s |", cell(t))
			}
			for _, rc := range ratios {
				x := ratio(rc.num, rc.den)
				if math.IsNaN(x) {
					fmt.Fprintf(w, " — |")
				} else {
					fmt.Fprintf(w, " %.2f× |", x)
				}
			}
			target := ""
			if mt.check != nil && has("signet") {
				d := median(vals["direct"])
				v := median(vals["signet"])
				rb := ratio("signet", "barehop")
				ok, text := mt.check(v, d, rb)
				switch {
				case math.IsNaN(v) || math.IsNaN(rb) && strings.Contains(text, "bare hop") || math.IsNaN(d) && strings.Contains(text, "direct"):
					target = "? " + text + " (not measured)"
				case ok:
					target = "✓ " + text
				default:
					target = "✗ " + text
				}
			}
			fmt.Fprintf(w, " %s |\n", target)
		}
	}
	writeChunkedSummary(w, r)
}

// writeChunkedSummary compares signet's CPU per GB on the aws-chunked uploads with a plain
// PUT's of the same size (issue 16: decoding, verifying and re-framing ≤ 1.15×), median of
// per-round ratios.
func writeChunkedSummary(w io.Writer, r *result) {
	if !contains(r.targets, "signet") || r.samples["large-put"] == nil {
		return
	}
	perGB := func(s sample) float64 { return cpuOrNaN(s, s.proxyCPU.Seconds()/(float64(s.bytes)/1e9)) }
	plain := r.samples["large-put"]["signet"]
	var lines []string
	for _, sc := range r.scenarios {
		if sc.mode == "" || r.samples[sc.id] == nil {
			continue
		}
		var rs []float64
		for i, s := range r.samples[sc.id]["signet"] {
			rs = append(rs, perGB(s)/perGB(plain[i]))
		}
		x := median(rs)
		mark := "✓"
		if !(x <= 1.15) {
			mark = "✗"
		}
		lines = append(lines, fmt.Sprintf("%s: %.2f× (%s ≤ 1.15×)", sc.name, x, mark))
	}
	if lines != nil {
		fmt.Fprintf(w, "\nsignet's proxy CPU per GB on aws-chunked uploads, against its plain PUT of the same size: %s.\n", strings.Join(lines, "; "))
	}
}

func median(v []float64) float64 {
	s := slices.DeleteFunc(slices.Clone(v), math.IsNaN)
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fmtCount writes a throughput with thousands separators.
func fmtCount(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtSig writes v with three significant digits.
func fmtSig(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}
