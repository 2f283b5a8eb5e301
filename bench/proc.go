package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every
// Linux architecture Go supports (getconf CLK_TCK).
const clockTicks = 100

// proc is a subprocess: an upstream, a bare hop or signet. Its stdout and stderr go to a
// file, so that the cost of writing its logs is paid as in production.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited and err is set
	err     error
}

// startProc starts bin with its output in logPath. The caller owns the process and must
// call stop.
func startProc(name, logPath, bin string, env []string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: a Ctrl-C in the terminal reaches only the harness, which
		// then stops its children in order.
		Setpgid: true,
		// Should the harness be killed outright, its children go too.
		Pdeathsig: syscall.SIGKILL,
	}
	err = cmd.Start()
	f.Close() // the child has its own descriptor
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to stop (SIGTERM: signet drains its requests), kills it after
// grace, and waits for it. It reports a process that had already died or had to be killed.
func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return fmt.Errorf("%s (pid %d) had exited by itself: %v; log: %s", p.name, p.pid(), p.err, p.logTail())
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s (pid %d) did not stop within %v of SIGTERM and was killed", p.name, p.pid(), grace)
}

// listeningRE matches the line signet (and the harness's own roles) log once listening.
var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// waitListening reads the process's log until it says where it listens. The log is a file,
// so it is polled; the wait is bounded by timeout, the process's exit and ctx.
func (p *proc) waitListening(ctx context.Context, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(p.logPath); err == nil {
			if m := listeningRE.FindSubmatch(b); m != nil {
				return string(m[1]), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-p.done:
			return "", fmt.Errorf("%s exited before listening: %v; log: %s", p.name, p.err, p.logTail())
		case <-deadline.C:
			return "", fmt.Errorf("%s did not log %q within %v; log: %s", p.name, "msg=listening", timeout, p.logTail())
		case <-tick.C:
		}
	}
}

// flushProfile asks a signet built with the profiling overlay (see profileSource) to
// write its CPU profile, and waits, bounded, for the file that says it has.
func (p *proc) flushProfile(ctx context.Context, dir string) error {
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return fmt.Errorf("%s: ask for its cpu profile: %w", p.name, err)
	}
	done := filepath.Join(dir, fmt.Sprintf("signet-%d.pprof.done", p.pid()))
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(done); err == nil {
			return os.Remove(done)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return fmt.Errorf("%s exited before writing its cpu profile: %v", p.name, p.err)
		case <-deadline.C:
			return fmt.Errorf("%s wrote no cpu profile within 5s", p.name)
		case <-tick.C:
		}
	}
}

// logTail is the end of the process's log, for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return strings.TrimSpace(string(b))
}

// cpuTime is the CPU time (user + system, all threads, living and dead) the process has
// used so far, from /proc/<pid>/stat. Its resolution is one clock tick, 10 ms.
func (p *proc) cpuTime() (time.Duration, error) {
	return cpuTimeOf(p.pid())
}

func cpuTimeOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a /proc/<pid>/stat line. The
// command name (field 2) may contain spaces and parentheses, so fields are counted from
// the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat: no ')' in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the command", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] { // field 3 (state) is f[0]
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// machineBusy is the CPU time all CPUs have spent busy since boot: the first line of
// /proc/stat, every field but idle and iowait (guest time is already in user).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read machine cpu time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("parse /proc/stat: %q", line)
	}
	var ticks int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// peakRSS is the process's high-water mark of resident memory (VmHWM), in bytes: a peak
// over the whole life of the process.
func (p *proc) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0, fmt.Errorf("read peak rss: %w", err)
	}
	return parseStatusKB(b, "VmHWM")
}

func parseStatusKB(b []byte, field string) (int64, error) {
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// freeAddr returns a loopback address with a port that was free a moment ago, for servers
// that cannot listen on port 0 and report it (versitygw).
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// waitHealthy polls url until it answers 200; the only readiness signal versitygw gives.
// Bounded by timeout, the process's exit and ctx.
func waitHealthy(ctx context.Context, p *proc, url string, tc *tls.Config, timeout time.Duration) error {
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		if err != nil {
			cancel()
			return fmt.Errorf("health check %s: %w", url, err)
		}
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			err = errors.New(resp.Status)
		}
		cancel()
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return fmt.Errorf("%s exited before %s answered: %v; log: %s", p.name, url, p.err, p.logTail())
		case <-deadline.C:
			return fmt.Errorf("%s not healthy after %v: %v", url, timeout, last)
		case <-tick.C:
		}
	}
}
