//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/signet-proxy/signet/internal/testenv"
)

// demoCmd is scripts/demo.sh (what make demo runs), through wrap, on ports chosen at run
// time.
func demoCmd(t *testing.T, ports [3]string, wrap ...string) *exec.Cmd {
	t.Helper()
	bin, err := signetBinary()
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../../scripts/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	args := append(wrap, script)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "VERSITYGW="+testenv.VersityGWBinary(t), "SIGNET="+bin, "DEMO_DIR="+t.TempDir(),
		"DEMO_GW_PORT="+ports[0], "DEMO_PORT="+ports[1], "DEMO_ADMIN_PORT="+ports[2])
	return cmd
}

func freePorts(t *testing.T) [3]string {
	t.Helper()
	var ports [3]string
	for i := range ports {
		_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
		ports[i] = port
	}
	return ports
}

var demoPidsRE = regexp.MustCompile(`^demo pids: (\d+) (\d+)$`)

// TestDemoStopsWhatItStarted: however the demo is stopped (Ctrl-C, kill, a closed
// terminal, kill -9 of it or of the make that ran it), versitygw and signet stop too and
// its ports are free again.
func TestDemoStopsWhatItStarted(t *testing.T) {
	for _, tt := range []struct {
		name   string
		wrap   []string // what runs the script; the signal goes to the first process
		signal syscall.Signal
	}{
		{name: "Ctrl-C", signal: syscall.SIGINT},
		{name: "kill", signal: syscall.SIGTERM},
		{name: "terminal closed", signal: syscall.SIGHUP},
		{name: "kill -9", signal: syscall.SIGKILL},
		// The trailing command keeps bash from exec'ing the script: bash is its parent,
		// as make is under make demo.
		{name: "kill -9 of its parent", wrap: []string{"bash", "-c", `"$0"; :`}, signal: syscall.SIGKILL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ports := freePorts(t)
			cmd := demoCmd(t, ports, tt.wrap...)
			cmd.Stderr = t.Output()
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := false
			t.Cleanup(func() {
				if !exited {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			})
			var pids []int
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				fmt.Fprintln(t.Output(), sc.Text())
				if m := demoPidsRE.FindStringSubmatch(sc.Text()); m != nil {
					for _, s := range m[1:] {
						pid, _ := strconv.Atoi(s)
						pids = append(pids, pid)
					}
					break
				}
			}
			if pids == nil {
				t.Fatal("the demo never came up")
			}
			// Opened before the signal, so a pid reused later cannot be mistaken for them.
			var fds []int
			for _, pid := range pids {
				fd, err := unix.PidfdOpen(pid, 0)
				if err != nil {
					t.Fatalf("pidfd of %d: %v", pid, err)
				}
				fds = append(fds, fd)
				t.Cleanup(func() { unix.Close(fd) })
			}
			if err := cmd.Process.Signal(tt.signal); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			exited = true
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Errorf("the demo exited with %v, want a failure status", err)
			}
			// A pidfd becomes readable when its process has exited.
			for i, fd := range fds {
				n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 30_000)
				if err != nil || n != 1 {
					t.Errorf("process %d still runs 30s after the demo was stopped (%v)", pids[i], err)
					_ = syscall.Kill(pids[i], syscall.SIGKILL)
				}
			}
			for _, port := range ports {
				if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
					c.Close()
					t.Errorf("port %s still accepts connections", port)
				}
			}
		})
	}
}

// TestDemoRefusesTakenPorts: a port already taken (by an earlier demo, say) is a clear
// error and a failure status, before anything is started.
func TestDemoRefusesTakenPorts(t *testing.T) {
	ports := freePorts(t)
	ln, err := net.Listen("tcp", "127.0.0.1:"+ports[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out, err := demoCmd(t, ports).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("exit %v, want a failure status\n%s", err, out)
	}
	if want := "port " + ports[1] + " on 127.0.0.1 is already in use"; !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if strings.Contains(string(out), "demo pids") {
		t.Errorf("the demo started anyway:\n%s", out)
	}
}
