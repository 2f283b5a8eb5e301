package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"go.yaml.in/yaml/v3"

	"github.com/signet-proxy/signet/config"
)

// TestDockerfileBuild runs the Dockerfile's build command (Docker cannot run here) and
// checks that it makes a static binary that runs, and that the image is shaped as
// promised: multi-stage, non-root, a healthcheck, the default config path.
func TestDockerfileBuild(t *testing.T) {
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(df)
	for _, want := range []string{"USER nonroot", "HEALTHCHECK", `"/signet", "healthcheck"`, `"--config", "/etc/signet/config.yaml"`, "FROM gcr.io/distroless/static"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if n := strings.Count(text, "\nFROM "); n != 2 {
		t.Errorf("%d stages, want a build stage and a runtime stage", n)
	}
	m := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no `RUN CGO_ENABLED=0 go build` line in the Dockerfile")
	}
	out := filepath.Join(t.TempDir(), "signet")
	script := strings.NewReplacer("${VERSION}", "v0.0.0-test", "/out/signet", out, "./cmd/signet", ".").Replace(m[1])
	cmd := exec.Command("sh", "-c", script)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked; distroless/static has no libc")
		}
	}
	b, err := exec.Command(out, "version").Output()
	if err != nil || !bytes.Contains(b, []byte("signet v0.0.0-test")) {
		t.Errorf("version: %q %v", b, err)
	}
}

// TestExampleConfigs keeps the configs in examples/ loadable.
func TestExampleConfigs(t *testing.T) {
	env := func(string) (string, bool) { return "set", true }
	// The Kubernetes example carries its config inside a ConfigMap.
	raw, err := os.ReadFile("../../examples/kubernetes/pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	found := false
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc.Kind == "ConfigMap" {
			found = true
			if _, err := config.Parse("pod.yaml#config.yaml", []byte(doc.Data["config.yaml"]), env); err != nil {
				t.Errorf("kubernetes example: %v", err)
			}
		}
	}
	if !found {
		t.Error("no ConfigMap in the Kubernetes example")
	}
	raw, err = os.ReadFile("../../examples/compose/signet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse("signet.yaml", raw, env); err != nil {
		t.Errorf("compose example: %v", err)
	}
}

func TestHealthcheck(t *testing.T) {
	p := startSignet(t, "--config", writeConfig(t, `admin_listen: 127.0.0.1:0
accounts: {a: {endpoint: "http://127.0.0.1:1", credentials: {access_key_id: a, secret_access_key: b}}}
buckets: [{name: alpha, account: a}]
`))
	var out bytes.Buffer
	if err := run(t.Context(), []string{"healthcheck", "--addr", p.adminAddr}, &out, &out); err != nil {
		t.Errorf("healthy signet: %v", err)
	}
	if err := run(t.Context(), []string{"healthcheck", "--addr", "127.0.0.1:1"}, &out, &out); err == nil {
		t.Error("healthcheck of nothing succeeded")
	}
}

// TestDockerfileLint runs BuildKit's own Dockerfile parser and build checks (what `docker
// build --check` applies) over the Dockerfile: no warning may remain.
func TestDockerfileLint(t *testing.T) {
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		t.Errorf("Dockerfile:%v: %s: %s", loc, rule, msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("instructions: %v", err)
	}
	if len(stages) != 2 {
		t.Errorf("%d stages", len(stages))
	}
}

// TestImageListensWhereAPublishedPortArrives: the image's default S3 address is on all of
// the container's addresses (its loopback is its own, and docker run -p arrives on its
// network address), and with it serve refuses a config without clients, saying exactly
// how to go on, and accepts one with clients.
func TestImageListensWhereAPublishedPortArrives(t *testing.T) {
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ENV .*\bSIGNET_LISTEN=(\S+)`).FindSubmatch(df)
	if m == nil {
		t.Fatal("the Dockerfile sets no SIGNET_LISTEN")
	}
	addr := string(m[1])
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "0.0.0.0" {
		t.Fatalf("SIGNET_LISTEN=%s, want all addresses (0.0.0.0:PORT)", addr)
	}
	if !regexp.MustCompile(`(?m)^ENV .*\bSIGNET_ADMIN_LISTEN=0\.0\.0\.0:9001\b`).Match(df) {
		t.Error("the admin listener is not on all addresses: kubelet probes could not reach it")
	}
	t.Setenv("SIGNET_LISTEN", addr)
	anonymous := writeConfig(t, "accounts: {a: {endpoint: \"http://127.0.0.1:1\", credentials: {access_key_id: a, secret_access_key: b}}}\nbuckets: [{name: alpha, account: a}]\n")
	var out bytes.Buffer
	err = run(t.Context(), []string{"serve", "--config", anonymous}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "SIGNET_LISTEN: \""+addr+"\" is reachable beyond this machine") ||
		!strings.Contains(err.Error(), "configure clients") || !strings.Contains(err.Error(), "set allow_anonymous_network: true") {
		t.Errorf("serve without clients: %v", err)
	}
	cfg, err := config.Parse("c.yaml", []byte(`accounts: {a: {endpoint: "http://127.0.0.1:1", credentials: {access_key_id: a, secret_access_key: b}}}
buckets: [{name: alpha, account: a}]
clients: [{name: app, access_key_id: app, secret_access_key: app-secret, buckets: [alpha]}]
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckExposure(addr); err != nil {
		t.Errorf("with clients: %v", err)
	}
}
