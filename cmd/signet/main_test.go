package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/internal/testenv"
)

// signetBinary builds cmd/signet once per test run.
var signetBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "signet-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "signet")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// proc is a running signet binary.
type proc struct {
	cmd       *exec.Cmd
	addr      string
	adminAddr string
	lines     chan string // log lines after "listening"
	log       *lockedLog  // everything it logged
	done      chan struct{}
	err       error
}

// startSignet runs `signet serve` with args and waits for its "listening" log line.
func startSignet(t *testing.T, args ...string) *proc {
	t.Helper()
	return startSignetEnv(t, nil, args...)
}

// startSignetEnv is startSignet with env as the process's environment, when not nil.
func startSignetEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	bin, err := signetBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logBuf lockedLog
	p := &proc{cmd: cmd, done: make(chan struct{}), lines: make(chan string, 100000), log: &logBuf}
	addrc := make(chan [2]string, 1)
	logs := io.MultiWriter(t.Output(), &logBuf)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		admin := ""
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logs, line)
			if m := adminRE.FindStringSubmatch(line); m != nil {
				admin = m[1]
			}
			if m := listeningRE.FindStringSubmatch(line); m != nil && !sent {
				addrc <- [2]string{m[1], admin}
				sent = true
				continue
			}
			if sent {
				select {
				case p.lines <- line:
				default: // nobody is reading this far
				}
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		checkLogForSecrets(t, logBuf.String(), args)
	})
	select {
	case a := <-addrc:
		p.addr, p.adminAddr = a[0], a[1]
	case <-p.done:
		t.Fatalf("signet exited before listening: %v", p.err)
	}
	return p
}

// waitLog reads log lines until one matches re, and returns it; it fails the test if the
// process exits first or nothing matches within limit.
func (p *proc) waitLog(t *testing.T, re *regexp.Regexp, limit time.Duration) string {
	t.Helper()
	timeout := time.After(limit)
	for {
		select {
		case line := <-p.lines:
			if re.MatchString(line) {
				return line
			}
		case <-p.done:
			for { // lines it logged before exiting are still to be read
				select {
				case line := <-p.lines:
					if re.MatchString(line) {
						return line
					}
					continue
				default:
				}
				break
			}
			t.Fatalf("signet exited (%v) before logging %s", p.err, re)
		case <-timeout:
			t.Fatalf("no log line matching %s within %s", re, limit)
		}
	}
}

var adminRE = regexp.MustCompile(`msg="admin listening" addr=(\S+)`)
var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// peakRSS reads the process's high-water mark of resident memory, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmHWM in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "signet.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLargeObjectMemoryStaysFlat streams 1 GiB up and down through the real binary, once
// as a plain body and once aws-chunked, and checks the proxy's peak RSS stays under 64 MiB.
func TestLargeObjectMemoryStaysFlat(t *testing.T) {
	size := int64(1 << 30)
	if s := os.Getenv("SIGNET_LARGE_OBJECT_BYTES"); s != "" {
		size, _ = strconv.ParseInt(s, 10, 64)
	}
	gw := testenv.StartVersityGW(t)
	if err := os.Mkdir(filepath.Join(gw.DataDir, "big"), 0o755); err != nil { // a bucket, for the posix backend
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`
admin_listen: 127.0.0.1:0
accounts:
  gw:
    endpoint: %s
    credentials: {access_key_id: %s, secret_access_key: %s}
buckets:
  - {name: big, account: gw}
`, gw.Endpoint, gw.AccessKey, gw.SecretKey))
	p := startSignet(t, "--config", cfg)
	client := &http.Client{Transport: &http.Transport{}}

	for _, chunked := range []bool{false, true} {
		url := fmt.Sprintf("http://%s/big/object-chunked-%v", p.addr, chunked)
		sent := sha256.New()
		var body io.Reader = io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), size), sent)
		if chunked {
			body = frameUnsignedTrailer(t, body)
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, url, body)
		if chunked {
			req.Header.Set("Content-Encoding", "aws-chunked")
			req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
			req.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(size, 10))
			req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		} else {
			req.ContentLength = size
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("put (aws-chunked %v): %d %s", chunked, resp.StatusCode, msg)
		}

		resp, err = client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.New()
		n, err := io.Copy(got, resp.Body)
		resp.Body.Close()
		if err != nil || n != size || !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
			t.Fatalf("get (aws-chunked %v): %d bytes, %v, hash match %v", chunked, n, err, bytes.Equal(got.Sum(nil), sent.Sum(nil)))
		}
	}
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS after 2 × %d MiB up and down: %.1f MiB", size>>20, float64(rss)/(1<<20))
	if rss > 64<<20 {
		t.Errorf("peak RSS %d MiB, want under 64 MiB", rss>>20)
	}
}

// frameUnsignedTrailer streams payload framed as STREAMING-UNSIGNED-PAYLOAD-TRAILER in 64 KiB
// chunks with a CRC32 trailer, as the JavaScript SDK sends a stream body.
func frameUnsignedTrailer(t *testing.T, payload io.Reader) io.Reader {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	t.Cleanup(func() { pr.Close(); <-done })
	go func() {
		defer close(done)
		crc := crc32.NewIEEE()
		buf := make([]byte, 64<<10)
		for {
			n, err := io.ReadFull(payload, buf)
			if n > 0 {
				crc.Write(buf[:n])
				if _, werr := fmt.Fprintf(pw, "%x\r\n%s\r\n", n, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				break
			}
		}
		fmt.Fprintf(pw, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", base64.StdEncoding.EncodeToString(crc.Sum(nil)))
		pw.Close()
	}()
	return pr
}

// TestServeRejectsABadConfig: every problem at once, with lines, and a non-zero exit.
func TestServeRejectsABadConfig(t *testing.T) {
	bin, err := signetBinary()
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `listen: 127.0.0.1:0
acounts: {}
accounts:
  prod:
    r2_account_id: 0123456789abcdef0123456789abcdef
    credentials: {access_key_id: a, secret_access_key: b}
buckets:
  - name: photos
    account: prdo
  - name: docs
    account: prod
    jurisdiction: mars
  - name: "logs-[a"
    account: prod
`)
	cmd := exec.Command(bin, "serve", "--config", cfg)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	for _, want := range []string{
		`signet.yaml:2: unknown key "acounts"`,
		`signet.yaml:9: buckets[0].account: unknown account "prdo"`,
		`signet.yaml:12: buckets[1].jurisdiction: unknown jurisdiction "mars"`,
		`signet.yaml:13: buckets[2].name: "logs-[a" is not a valid glob`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		ok   bool
		out  string
		not  string // must not be in the output
	}{
		{name: "version", args: []string{"version"}, ok: true, out: "signet "},
		{name: "unknown command", args: []string{"fly"}, out: "unknown command"},
		{name: "zero-config without variables", args: []string{"serve"}, out: "missing: R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY"},
		{name: "bad listen flag", args: []string{"serve", "--listen", "nope"}, env: map[string]string{
			"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID": "a", "R2_SECRET_ACCESS_KEY": "b",
		}, out: `--listen: "nope" is not host:port`},
		{name: "network listen without clients", args: []string{"serve", "--listen", "0.0.0.0:9000"}, env: map[string]string{
			"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID": "a", "R2_SECRET_ACCESS_KEY": "b",
		}, out: "or set SIGNET_ALLOW_ANONYMOUS_NETWORK=true"},
		{name: "network listen from the environment without clients", args: []string{"serve"}, env: map[string]string{
			"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID": "a", "R2_SECRET_ACCESS_KEY": "b",
			"SIGNET_LISTEN": "0.0.0.0:9000",
		}, out: `SIGNET_LISTEN: "0.0.0.0:9000" is reachable beyond this machine`},
		{name: "bad SIGNET_ALLOW_ANONYMOUS_NETWORK", args: []string{"serve"}, env: map[string]string{
			"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID": "a", "R2_SECRET_ACCESS_KEY": "b",
			"SIGNET_ALLOW_ANONYMOUS_NETWORK": "yes please",
		}, out: `SIGNET_ALLOW_ANONYMOUS_NETWORK="yes please" is not true or false`},
		{name: "zero-config errors name the variable", args: []string{"serve"}, env: map[string]string{
			"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID": "a", "R2_SECRET_ACCESS_KEY": "b",
			"R2_JURISDICTION": "mars",
		}, out: `R2_JURISDICTION: unknown jurisdiction "mars"`},
		{name: "bad admin-listen flag", args: []string{"serve", "--admin-listen", "nope"}, out: `--admin-listen: "nope" is not host:port or off`},
		{name: "bad SIGNET_ADMIN_LISTEN", args: []string{"serve"}, env: map[string]string{"SIGNET_ADMIN_LISTEN": "nope"},
			out: `SIGNET_ADMIN_LISTEN: "nope" is not host:port or off`},
		{name: "missing config file", args: []string{"serve", "--config", "/nonexistent/signet.yaml"},
			out: "config file /nonexistent/signet.yaml does not exist", not: "invalid config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_JURISDICTION",
				"SIGNET_LISTEN", "SIGNET_ADMIN_LISTEN", "SIGNET_ALLOW_ANONYMOUS_NETWORK"} {
				t.Setenv(k, tt.env[k])
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			all := stdout.String() + stderr.String()
			if err != nil {
				all += err.Error()
			}
			if !strings.Contains(all, tt.out) {
				t.Errorf("output %q lacks %q", all, tt.out)
			}
			if tt.not != "" && strings.Contains(all, tt.not) {
				t.Errorf("output %q holds %q", all, tt.not)
			}
		})
	}
}

// TestCommandHelp: each command's -h says what it does and lists its flags, in place of
// the flag package's bare "Usage of serve:".
func TestCommandHelp(t *testing.T) {
	for _, tt := range []struct{ cmd, summary, flag string }{
		{"serve", "Run the sidecar", "-admin-listen"},
		{"check", "Check each route once", "-timeout"},
		{"healthcheck", "/healthz", "-addr"},
		{"ca-cert", "local CA", "-config"},
	} {
		t.Run(tt.cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{tt.cmd, "-h"}, &stdout, &stderr)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("err = %v", err)
			}
			out := stderr.String()
			for _, want := range []string{"Usage: signet " + tt.cmd, tt.summary, tt.flag} {
				if !strings.Contains(out, want) {
					t.Errorf("help lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "Usage of") {
				t.Errorf("Go's default usage line:\n%s", out)
			}
		})
	}
}

// TestListenAddressesFromFlagsAndEnvironment: zero-config mode moves its admin listener
// with --admin-listen or SIGNET_ADMIN_LISTEN, and its S3 listener with SIGNET_LISTEN, so a
// second instance does not die on 9001.
func TestListenAddressesFromFlagsAndEnvironment(t *testing.T) {
	bin, err := signetBinary()
	if err != nil {
		t.Fatal(err)
	}
	zero := []string{"R2_ACCOUNT_ID=0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID=a", "R2_SECRET_ACCESS_KEY=b",
		"R2_ENDPOINT=http://" + testenv.FreeAddr(t)}
	for _, tt := range []struct {
		name string
		args []string
		env  []string
	}{
		{name: "flags", args: []string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}},
		{name: "environment", env: []string{"SIGNET_LISTEN=127.0.0.1:0", "SIGNET_ADMIN_LISTEN=127.0.0.1:0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"serve"}, tt.args...)...)
			cmd.Env = append(append(os.Environ(), zero...), tt.env...)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			sc := bufio.NewScanner(stderr)
			var admin, s3 string
			for (admin == "" || s3 == "") && sc.Scan() {
				fmt.Fprintln(t.Output(), sc.Text())
				if m := adminRE.FindStringSubmatch(sc.Text()); m != nil {
					admin = m[1]
				}
				if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
					s3 = m[1]
				}
			}
			if admin == "" || s3 == "" || strings.HasSuffix(admin, ":9001") || strings.HasSuffix(s3, ":9000") {
				t.Fatalf("admin %q, s3 %q: want both on ports chosen at run time", admin, s3)
			}
			resp, err := http.Get("http://" + admin + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("healthz: %s", resp.Status)
			}
		})
	}
}

// lockedLog collects a process's log for the secret scan.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// checkLogForSecrets fails the test if signet's log holds a secret of its config (found
// through --config in args), a signature, a credential scope or a session token.
func checkLogForSecrets(t *testing.T, log string, args []string) {
	t.Helper()
	forbidden := []string{"Signature=", "Credential=", "X-Amz-Security-Token", "eyJ", "and0L"}
	for i, a := range args {
		if a != "--config" || i+1 >= len(args) {
			continue
		}
		cfg, err := config.Load(args[i+1])
		if err != nil {
			continue // a config made to fail
		}
		for _, s := range cfg.Secrets() {
			if len(s) >= 8 { // placeholders like "b" match anything
				forbidden = append(forbidden, s)
			}
		}
	}
	for _, f := range forbidden {
		if strings.Contains(log, f) {
			t.Errorf("signet's log contains %q", f)
		}
	}
}

// TestREADMEInvalidConfigSample: the README's sample of an invalid config's output is what
// serve prints for the sample file beside it.
func TestREADMEInvalidConfigSample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\nfile:\n\n```yaml\n(.*?)```\n\ngives\n\n```\n(.*?)```\n").FindSubmatch(readme)
	if m == nil {
		t.Fatal("no sample file and output in the README")
	}
	path := filepath.Join(t.TempDir(), "signet.yaml")
	if err := os.WriteFile(path, m[1], 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(path))
	var out bytes.Buffer
	err = run(t.Context(), []string{"serve", "--config", "signet.yaml"}, &out, &out)
	if err == nil {
		t.Fatal("the sample config is valid")
	}
	if got, want := "signet: "+err.Error()+"\n", string(m[2]); got != want {
		t.Errorf("serve prints\n%s\nthe README shows\n%s", got, want)
	}
}
