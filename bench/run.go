package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Credentials and names the harness gives every upstream; loopback only.
const (
	benchRegion    = "us-east-1"
	benchAccessKey = "signet-bench"
	benchSecretKey = "signet-bench-secret-key"
	benchBucket    = "bench"
)

// env is what one run shares: where files go and which binaries it runs.
type env struct {
	o         *options
	tmp       string
	self      string // this executable, re-run with -role
	signetBin string
	stderr    io.Writer
	seq       int       // numbers log files
	cert      *testCert // the TLS upstreams' certificate, made once per run
}

// upstream is a running upstream and what its measurements need.
type upstream struct {
	kind       string // "null" or "versitygw", with "-tls" when served over TLS
	endpoint   string // http://127.0.0.1:PORT, https for TLS
	caFile     string // the TLS upstream's certificate, which its clients trust; "" for http
	tls        *tls.Config
	region     string
	accessKey  string
	secretKey  string
	bucket     string
	proc       *proc
	signetConf string // signet's config file for this upstream
	bConf      string // signet-b's
	small      *content
	smallBytes []byte
	large      *content
}

// scenario is one row group of the report.
type scenario struct {
	id     string // unique, e.g. small-get-c32
	name   string // e.g. GET 4 KiB c=32
	method string
	size   int64
	conc   int
	large  bool
	mode   string // aws-chunked framing of a PUT body (modeSigned, modeTrailer); "" for plain
}

func run(ctx context.Context, o *options, stdout, stderr io.Writer) (err error) {
	tmp, err := os.MkdirTemp("", "signet-bench-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer func() {
		if o.keep || err != nil {
			fmt.Fprintln(stderr, "bench: logs and data kept in", tmp)
			return
		}
		if rerr := os.RemoveAll(tmp); rerr != nil {
			fmt.Fprintln(stderr, "bench: remove temporary directory:", rerr)
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this executable: %w", err)
	}
	e := &env{o: o, tmp: tmp, self: self, stderr: stderr}
	m := describeMachine(ctx)
	if e.signetBin = o.signetBin; e.signetBin == "" {
		if e.signetBin, err = buildSignet(ctx, tmp); err != nil {
			return err
		}
		m.signet = signetRevision(ctx) + ", built by the harness from ./cmd/signet"
	} else {
		m.signet = "prebuilt " + o.signetBin
	}
	var results []*result
	for _, kind := range o.upstreams {
		res, err := e.benchUpstream(ctx, kind)
		if err != nil {
			return fmt.Errorf("%s upstream: %w", kind, err)
		}
		results = append(results, res)
	}
	var report bytes.Buffer
	writeReport(&report, m, o, results)
	if _, err := stdout.Write(report.Bytes()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if o.out != "" {
		if err := os.WriteFile(o.out, report.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// buildSignet builds ./cmd/signet of the module the harness runs in.
func buildSignet(ctx context.Context, tmp string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(tmp, "signet")
	args := []string{"build", "-o", bin}
	if os.Getenv(profileEnv) != "" {
		overlay, err := profileOverlay(root, tmp)
		if err != nil {
			return "", err
		}
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/signet")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build signet: %w\n%s", err, out)
	}
	return bin, nil
}

// profileSource is added to signet's main package when the harness profiles: it writes a
// CPU profile of the process's whole life to $SIGNET_BENCH_CPUPROFILE/signet-<pid>.pprof,
// stopped at the SIGUSR1 The file exists only in
// the build overlay: the signet binary itself has no profiling switch.
const profileSource = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
)

func init() {
	dir := os.Getenv("` + profileEnv + `")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("signet-%d.pprof", os.Getpid())))
	if err != nil || pprof.StartCPUProfile(f) != nil {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() { // lives as long as the process
		<-sig
		pprof.StopCPUProfile()
		f.Close()
		os.WriteFile(f.Name()+".done", nil, 0o644)
	}()
}
`

// profileOverlay writes profileSource and a go build -overlay file that adds it to
// cmd/signet.
func profileOverlay(root, tmp string) (string, error) {
	src := filepath.Join(tmp, "benchprofile.go")
	if err := os.WriteFile(src, []byte(profileSource), 0o644); err != nil {
		return "", fmt.Errorf("profiling overlay: %w", err)
	}
	overlay := filepath.Join(tmp, "overlay.json")
	j := fmt.Sprintf(`{"Replace": {%q: %q}}`, filepath.Join(root, "cmd", "signet", "zz_benchprofile.go"), src)
	if err := os.WriteFile(overlay, []byte(j), 0o644); err != nil {
		return "", fmt.Errorf("profiling overlay: %w", err)
	}
	return overlay, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("find the module: run the harness inside the signet module (go run ./bench)")
	}
	return filepath.Dir(gomod), nil
}

// plan lists the scenarios of one upstream, in report order.
func (e *env) plan(kind string, largeSize int64) []scenario {
	var out []scenario
	small := formatBytes(e.o.smallSize)
	for _, id := range e.o.scenarios {
		switch id {
		case "small-get", "small-put":
			method := strings.ToUpper(strings.TrimPrefix(id, "small-"))
			for _, c := range e.o.concurrency {
				out = append(out, scenario{id: fmt.Sprintf("%s-c%d", id, c), name: fmt.Sprintf("%s %s c=%d", method, small, c),
					method: method, size: e.o.smallSize, conc: c})
			}
		case "large-put", "large-get":
			method := strings.ToUpper(strings.TrimPrefix(id, "large-"))
			out = append(out, scenario{id: id, name: fmt.Sprintf("%s %s", method, formatBytes(largeSize)),
				method: method, size: largeSize, conc: 1, large: true})
		case "parallel-put", "parallel-get":
			method := strings.ToUpper(strings.TrimPrefix(id, "parallel-"))
			out = append(out, scenario{id: id, name: fmt.Sprintf("%s %d × %s", method, e.o.parallel, formatBytes(e.o.parallelSize)),
				method: method, size: e.o.parallelSize, conc: e.o.parallel, large: true})
		case "chunked-put", "trailer-put":
			if !strings.HasPrefix(kind, "null") {
				// The bare hop would forward the framing as it came, which a real server
				// stores or refuses: only the null upstream takes it from every target.
				continue
			}
			mode, what := modeSigned, "chunk-signed"
			if id == "trailer-put" {
				mode, what = modeTrailer, "unsigned-trailer"
			}
			out = append(out, scenario{id: id, name: fmt.Sprintf("PUT %s %s", formatBytes(largeSize), what),
				method: http.MethodPut, size: largeSize, conc: 1, large: true, mode: mode})
		}
	}
	return out
}

// benchUpstream starts one upstream and runs every round against it.
func (e *env) benchUpstream(ctx context.Context, kind string) (res *result, err error) {
	u, err := e.startUpstream(ctx, kind)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := u.proc.stop(10 * time.Second); serr != nil && err == nil && kind == "null" {
			err = serr
		}
	}()
	if err := e.prepare(ctx, u); err != nil {
		return nil, err
	}
	plan := e.plan(kind, u.large.size)
	res = newResult(kind, u.large.size, plan, e.o.targets, e.o.rounds)
	for r := range e.o.rounds {
		order := rotate(e.o.targets, r)
		for _, sc := range plan {
			for _, t := range order {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				s, err := e.measure(ctx, u, sc, t)
				if err != nil {
					return nil, fmt.Errorf("round %d, %s, %s: %w", r+1, sc.name, targetName(t), err)
				}
				res.samples[sc.id][t][r] = s
				fmt.Fprintf(e.stderr, "[%s %d/%d] %-16s %-8s %s\n", kind, r+1, e.o.rounds, sc.name, targetName(t), s.summary(sc))
			}
		}
	}
	return res, nil
}

func rotate(s []string, n int) []string {
	n %= len(s)
	return append(append([]string(nil), s[n:]...), s[:n]...)
}

// startUpstream starts the null endpoint or versitygw and writes signet's config for it.
func (e *env) startUpstream(ctx context.Context, kind string) (*upstream, error) {
	u := &upstream{kind: kind, region: benchRegion, accessKey: benchAccessKey, secretKey: benchSecretKey, bucket: benchBucket}
	u.small = newContent(e.o.smallSize)
	u.smallBytes = u.small.bytes()
	base, isTLS := strings.CutSuffix(kind, "-tls")
	scheme := "http://"
	var tlsArgs []string
	if isTLS {
		if e.cert == nil {
			var err error
			if e.cert, err = writeTestCert(e.tmp); err != nil {
				return nil, err
			}
		}
		u.caFile, u.tls, scheme = e.cert.certFile, &tls.Config{RootCAs: e.cert.pool}, "https://"
		tlsArgs = []string{"-cert", e.cert.certFile, "-key", e.cert.keyFile}
	}
	switch base {
	case "null":
		u.large = newContent(e.o.largeSize)
		p, err := startProc("null upstream", filepath.Join(e.tmp, kind+".log"), e.self, nil, roleArgs("null", tlsArgs...)...)
		if err != nil {
			return nil, err
		}
		addr, err := p.waitListening(ctx, 15*time.Second)
		if err != nil {
			_ = p.stop(5 * time.Second)
			return nil, err
		}
		u.proc, u.endpoint = p, scheme+addr
	case "versitygw":
		u.large = newContent(e.o.vgwLargeSize)
		bin, err := versityGWBinary()
		if err != nil {
			return nil, err
		}
		data := filepath.Join(e.tmp, kind+"-data")
		// A bucket, for the posix backend, is a directory.
		if err := os.MkdirAll(filepath.Join(data, benchBucket), 0o755); err != nil {
			return nil, fmt.Errorf("versitygw data directory: %w", err)
		}
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args := []string{"--access", u.accessKey, "--secret", u.secretKey, "--region", u.region,
			"--port", addr, "--health", "/healthz", "--quiet"}
		if isTLS {
			args = append(args, "--cert", e.cert.certFile, "--key", e.cert.keyFile)
		}
		p, err := startProc("versitygw", filepath.Join(e.tmp, kind+".log"), bin, nil, append(args, "posix", data)...)
		if err != nil {
			return nil, err
		}
		u.proc, u.endpoint = p, scheme+addr
		if err := waitHealthy(ctx, p, u.endpoint+"/healthz", u.tls, 15*time.Second); err != nil {
			_ = p.stop(5 * time.Second)
			return nil, err
		}
	}
	u.signetConf = filepath.Join(e.tmp, "signet-"+kind+".yaml")
	u.bConf = filepath.Join(e.tmp, "signet-b-"+kind+".yaml")
	for path, level := range map[string]string{u.signetConf: e.o.signetLog, u.bConf: e.o.bLog} {
		if err := writeSignetConfig(path, level, u); err != nil {
			_ = u.proc.stop(5 * time.Second)
			return nil, err
		}
	}
	return u, nil
}

// writeSignetConfig writes a config routing the bench bucket to u.
func writeSignetConfig(path, logLevel string, u *upstream) error {
	conf := fmt.Sprintf(`# written by go run ./bench
log: {format: text, level: %s}
admin_listen: 127.0.0.1:0   # on, as by default, but on a port of its own
accounts:
  bench:
    endpoint: %s
    region: %s
    credentials: {access_key_id: %s, secret_access_key: %s}
buckets:
  - {name: %s, account: bench}
`, logLevel, u.endpoint, u.region, u.accessKey, u.secretKey, u.bucket)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("write signet config: %w", err)
	}
	return nil
}

// prepare uploads the GET scenarios' objects to versitygw (the null upstream makes them
// up), directly and signed, and checks one of each can be read back.
func (e *env) prepare(ctx context.Context, u *upstream) error {
	cl := newClient(u, true)
	defer cl.close()
	base := u.endpoint + "/" + u.bucket + "/"
	objects := []*content{u.small, u.large}
	if contains(e.o.scenarios, "parallel-get") && e.o.parallelSize != u.large.size {
		objects = append(objects, newContent(e.o.parallelSize))
	}
	if strings.HasPrefix(u.kind, "versitygw") {
		fmt.Fprintf(e.stderr, "[versitygw] uploading %d test objects\n", len(objects))
		if err := cl.put(ctx, base+objectKey(u.small.size), bytes.NewReader(u.smallBytes), u.small.size); err != nil {
			return fmt.Errorf("upload test object: %w", err)
		}
		for _, c := range objects[1:] {
			if err := cl.put(ctx, base+objectKey(c.size), &contentReader{c: c}, c.size); err != nil {
				return fmt.Errorf("upload test object: %w", err)
			}
		}
	}
	buf := make([]byte, 256<<10)
	for _, c := range objects {
		if _, err := cl.get(ctx, base+objectKey(c.size), c, buf); err != nil {
			return fmt.Errorf("read test object back: %w", err)
		}
	}
	return nil
}

// versityGWBinary finds versitygw as internal/testenv does: $SIGNET_VERSITYGW, else the
// tools cache that `make tools` fills.
func versityGWBinary() (string, error) {
	if p := os.Getenv("SIGNET_VERSITYGW"); p != "" {
		return p, nil
	}
	dir := os.Getenv("SIGNET_TOOLS")
	if dir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("find versitygw: %w", err)
		}
		dir = filepath.Join(c, "signet-tools")
	}
	p := filepath.Join(dir, "versitygw-v1.8.0", "versitygw") // testenv.VersityGWVersion
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("find versitygw: %w (run `make tools`, set SIGNET_VERSITYGW, or use -upstream null)", err)
	}
	return p, nil
}

func targetName(t string) string {
	switch t {
	case "barehop":
		return "bare hop"
	case "signet-b":
		return "signet B"
	}
	return t
}

// startTarget starts the proxy that target names (none for direct) and returns it with the
// base URL the harness sends to.
func (e *env) startTarget(ctx context.Context, u *upstream, target string) (*proc, string, error) {
	e.seq++
	var p *proc
	var err error
	logPath := filepath.Join(e.tmp, fmt.Sprintf("%s-%s-%03d.log", u.kind, target, e.seq))
	switch target {
	case "direct":
		return nil, u.endpoint, nil
	case "barehop":
		args := []string{"-upstream", u.endpoint, "-region", u.region, "-access-key", u.accessKey, "-secret-key", u.secretKey}
		if u.caFile != "" {
			args = append(args, "-ca", u.caFile)
			if e.o.bareH2 {
				args = append(args, "-h2")
			}
		}
		p, err = startProc("bare hop", logPath, e.self, nil, roleArgs("barehop", args...)...)
	case "signet":
		return e.startSignet(ctx, u, target, logPath, e.signetBin, u.signetConf, e.o.signetLog, nil)
	case "signet-b":
		bin := e.o.bBin
		if bin == "" {
			bin = e.signetBin
		}
		return e.startSignet(ctx, u, target, logPath, bin, u.bConf, e.o.bLog, e.o.bEnv)
	default:
		return nil, "", fmt.Errorf("unknown target %q", target)
	}
	if err != nil {
		return nil, "", err
	}
	addr, err := p.waitListening(ctx, 15*time.Second)
	if err != nil {
		_ = p.stop(5 * time.Second)
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

// startSignet runs `signet serve` and waits until it listens: it says where in its log at
// level info; above info it logs nothing, so it gets a port chosen here and is polled.
func (e *env) startSignet(ctx context.Context, u *upstream, name, logPath, bin, conf, level string, env []string) (*proc, string, error) {
	listen := "127.0.0.1:0"
	quiet := level != "info" && level != "debug"
	if quiet {
		var err error
		if listen, err = freeAddr(); err != nil {
			return nil, "", err
		}
	}
	if u.caFile != "" {
		env = append([]string{"SSL_CERT_FILE=" + u.caFile}, env...)
	}
	p, err := startProc(name, logPath, bin, env, "serve", "--config", conf, "--listen", listen)
	if err != nil {
		return nil, "", err
	}
	addr := listen
	if quiet {
		// GET / is ListBuckets, which signet answers itself.
		err = waitHealthy(ctx, p, "http://"+addr+"/", nil, 15*time.Second)
	} else {
		addr, err = p.waitListening(ctx, 15*time.Second)
	}
	if err != nil {
		_ = p.stop(5 * time.Second)
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

// sample is one measurement of one scenario on one target.
type sample struct {
	requests int
	elapsed  time.Duration
	p50, p99 time.Duration
	bytes    int64
	ttfb     time.Duration
	proxy    bool // the proxy fields are set
	proxyCPU time.Duration
	proxyRSS int64
	upCPU    time.Duration
	otherCPU time.Duration // used by processes outside this run, on the same CPUs
}

// otherCores is how many cores other processes kept busy during the measurement.
func (s sample) otherCores() float64 { return s.otherCPU.Seconds() / s.elapsed.Seconds() }

func (s sample) reqPerSec() float64 { return float64(s.requests) / s.elapsed.Seconds() }
func (s sample) mbPerSec() float64  { return float64(s.bytes) / 1e6 / s.elapsed.Seconds() }

func (s sample) summary(sc scenario) string {
	var b strings.Builder
	if sc.large {
		fmt.Fprintf(&b, "%8.0f MB/s", s.mbPerSec())
		if sc.method == "GET" {
			fmt.Fprintf(&b, "  ttfb %.2f ms", ms(s.ttfb))
		}
		if s.proxy {
			fmt.Fprintf(&b, "  cpu %.2f s/GB  rss %.1f MiB", s.proxyCPU.Seconds()/(float64(s.bytes)/1e9), mib(s.proxyRSS))
		}
		fmt.Fprintf(&b, "  upstream cpu %.2f s/GB  others %.2f cores", s.upCPU.Seconds()/(float64(s.bytes)/1e9), s.otherCores())
		return b.String()
	}
	fmt.Fprintf(&b, "%8.0f req/s  p50 %.3f ms  p99 %.3f ms", s.reqPerSec(), ms(s.p50), ms(s.p99))
	if s.proxy {
		fmt.Fprintf(&b, "  cpu %.1f µs/req  rss %.1f MiB", us(s.proxyCPU)/float64(s.requests), mib(s.proxyRSS))
	}
	fmt.Fprintf(&b, "  upstream cpu %.1f µs/req  others %.2f cores", us(s.upCPU)/float64(s.requests), s.otherCores())
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func mib(n int64) float64        { return float64(n) / (1 << 20) }

// measure runs one scenario on one target, in a fresh proxy process.
func (e *env) measure(ctx context.Context, u *upstream, sc scenario, target string) (s sample, err error) {
	limit := e.o.warmup + e.o.duration + time.Minute
	if sc.large {
		limit = 10*time.Minute + time.Duration(sc.size/(10<<20))*time.Second // at least 10 MB/s
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	px, base, err := e.startTarget(ctx, u, target)
	if err != nil {
		return sample{}, err
	}
	if px != nil {
		defer func() {
			if dir := os.Getenv(profileEnv); dir != "" && strings.HasPrefix(target, "signet") {
				if perr := px.flushProfile(ctx, dir); perr != nil && err == nil {
					err = perr
				}
			}
			serr := px.stop(15 * time.Second)
			switch {
			case serr != nil && err == nil:
				err = serr
			case err == nil && !e.o.keep:
				_ = os.Remove(px.logPath) // a full run writes hundreds of MB of request logs
			}
		}()
	}
	cl := newClient(u, target == "direct")
	defer cl.close()
	url := base + "/" + u.bucket + "/"
	if sc.large {
		s, err = e.runLarge(ctx, cl, url, u, sc, px)
	} else {
		s, err = e.runSmall(ctx, cl, url, u, sc, px)
	}
	if err == nil && px != nil && px.exited() {
		err = fmt.Errorf("%s exited during the measurement: %v; log: %s", px.name, px.err, px.logTail())
	}
	return s, err
}

// cpuPair reads the proxy's (when there is one), the upstream's, the harness's own and the
// whole machine's CPU time, so that what other processes took meanwhile can be reported.
type cpuPair struct{ proxy, up, self, machine time.Duration }

func readCPU(px *proc, u *upstream) (cpuPair, error) {
	var c cpuPair
	var err error
	if c.machine, err = machineBusy(); err != nil {
		return c, err
	}
	if c.self, err = cpuTimeOf(os.Getpid()); err != nil {
		return c, err
	}
	if px != nil {
		if c.proxy, err = px.cpuTime(); err != nil {
			return c, fmt.Errorf("%s: %w", px.name, err)
		}
	}
	if c.up, err = u.proc.cpuTime(); err != nil {
		return c, fmt.Errorf("%s: %w", u.proc.name, err)
	}
	return c, nil
}

// finishSample fills the CPU and memory fields.
func finishSample(s *sample, px *proc, u *upstream, before cpuPair) error {
	after, err := readCPU(px, u)
	if err != nil {
		return err
	}
	s.upCPU = after.up - before.up
	ours := s.upCPU + after.self - before.self
	if px != nil {
		ours += after.proxy - before.proxy
	}
	s.otherCPU = max(0, after.machine-before.machine-ours)
	if px != nil {
		s.proxy = true
		s.proxyCPU = after.proxy - before.proxy
		if s.proxyRSS, err = px.peakRSS(); err != nil {
			return fmt.Errorf("%s: %w", px.name, err)
		}
	}
	return nil
}

func (e *env) runSmall(ctx context.Context, cl *client, url string, u *upstream, sc scenario, px *proc) (sample, error) {
	get := url + objectKey(u.small.size)
	one := func(ctx context.Context, w int, buf []byte) error {
		if sc.method == http.MethodGet {
			_, err := cl.get(ctx, get, u.small, buf)
			return err
		}
		return cl.put(ctx, fmt.Sprintf("%sput-%d-w%d", url, sc.size, w), bytes.NewReader(u.smallBytes), sc.size)
	}
	if e.o.warmup > 0 {
		if _, err := loadLoop(ctx, sc.conc, e.o.warmup, e.o.maxRequests, one); err != nil {
			return sample{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	before, err := readCPU(px, u)
	if err != nil {
		return sample{}, err
	}
	res, err := loadLoop(ctx, sc.conc, e.o.duration, e.o.maxRequests, one)
	if err != nil {
		return sample{}, err
	}
	s := sample{
		requests: len(res.latencies),
		elapsed:  res.elapsed,
		p50:      percentile(res.latencies, 50),
		p99:      percentile(res.latencies, 99),
		bytes:    int64(len(res.latencies)) * sc.size,
	}
	return s, finishSample(&s, px, u, before)
}

func (e *env) runLarge(ctx context.Context, cl *client, url string, u *upstream, sc scenario, px *proc) (sample, error) {
	buf := make([]byte, 256<<10)
	// One small GET first, so that connections are open and the process has served a
	// request, as in steady state.
	if _, err := cl.get(ctx, url+objectKey(u.small.size), u.small, buf); err != nil {
		return sample{}, fmt.Errorf("warm-up: %w", err)
	}
	before, err := readCPU(px, u)
	if err != nil {
		return sample{}, err
	}
	s := sample{requests: sc.conc, bytes: sc.size * int64(sc.conc)}
	c := u.large
	if c.size != sc.size {
		c = newContent(sc.size) // the parallel scenarios' objects
	}
	start := time.Now()
	if sc.conc == 1 {
		s.ttfb, err = e.transfer(ctx, cl, url, u, sc, c, 0, buf)
	} else {
		errs := make(chan error, sc.conc)
		for w := range sc.conc {
			go func() { // each sends its error; all are received below
				_, err := e.transfer(ctx, cl, url, u, sc, c, w, make([]byte, 256<<10))
				errs <- err
			}()
		}
		for range sc.conc {
			if werr := <-errs; werr != nil && err == nil {
				err = werr
			}
		}
	}
	s.elapsed = time.Since(start)
	if err != nil {
		return sample{}, err
	}
	return s, finishSample(&s, px, u, before)
}

// transfer is one large GET (checked against c) or PUT (of c, framed as sc.mode says).
func (e *env) transfer(ctx context.Context, cl *client, url string, u *upstream, sc scenario, c *content, w int, buf []byte) (time.Duration, error) {
	if sc.method == http.MethodGet {
		return cl.get(ctx, url+objectKey(sc.size), c, buf)
	}
	key := fmt.Sprintf("%sput-%d-w%d", url, sc.size, w)
	if sc.mode == "" {
		return 0, cl.put(ctx, key, &contentReader{c: c}, sc.size)
	}
	return 0, cl.putChunked(ctx, key, u, sc.mode, &contentReader{c: c}, sc.size)
}
