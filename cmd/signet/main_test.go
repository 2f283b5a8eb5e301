package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
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
	}{
		{name: "version", args: []string{"version"}, ok: true, out: "signet "},
		{name: "unknown command", args: []string{"fly"}, out: "unknown command"},
		{name: "zero-config without variables", args: []string{"serve"}, out: "missing: R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY"},
		{name: "bad listen flag", args: []string{"serve", "--listen", "nope"}, env: map[string]string{
			"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID": "a", "R2_SECRET_ACCESS_KEY": "b",
		}, out: `--listen: "nope" is not host:port`},
		{name: "network listen without clients", args: []string{"serve", "--listen", "0.0.0.0:9000"}, env: map[string]string{
			"R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "R2_ACCESS_KEY_ID": "a", "R2_SECRET_ACCESS_KEY": "b",
		}, out: "allow_anonymous_network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_JURISDICTION"} {
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
