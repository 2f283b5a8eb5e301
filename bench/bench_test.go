package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/signet-proxy/signet/internal/testenv"
)

// TestMain lets the test binary play the harness's subprocess roles, as the harness binary
// does: run re-executes os.Executable() with -role.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "-role" {
		if err := runRole(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[2], err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestContentFillMatchesWhole(t *testing.T) {
	size := int64(3*contentBlock + 123)
	c := newContent(size)
	whole := c.bytes()
	for _, tt := range []struct{ off, n int64 }{
		{0, size}, {0, 1}, {3, 9}, {7, 2}, {8, 100}, {contentBlock - 5, 20}, {contentBlock, 8}, {2*contentBlock + 4, contentBlock + 100},
	} {
		p := make([]byte, tt.n)
		c.fill(p, tt.off)
		if !bytes.Equal(p, whole[tt.off:tt.off+tt.n]) {
			t.Errorf("fill(off %d, %d bytes) differs from the whole content", tt.off, tt.n)
		}
		if i := c.mismatch(p, tt.off); i != -1 {
			t.Errorf("mismatch(off %d, %d bytes) = %d, want -1", tt.off, tt.n, i)
		}
	}
	if bytes.Equal(newContent(size).bytes(), newContent(size + 1).bytes()[:size]) {
		t.Error("two sizes have the same content")
	}
}

func TestCheckerCatchesEveryCorruption(t *testing.T) {
	size := int64(4 * contentBlock)
	c := newContent(size)
	good := c.bytes()
	check := func(body []byte) error {
		k := &checker{c: c}
		for p := body; len(p) > 0; { // in uneven pieces, as reads arrive
			n := min(len(p), 7000)
			if _, err := k.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		return k.finish()
	}
	if err := check(good); err != nil {
		t.Fatalf("good body: %v", err)
	}
	swapped := bytes.Clone(good)
	copy(swapped[contentBlock:], good[2*contentBlock:3*contentBlock])
	copy(swapped[2*contentBlock:], good[contentBlock:2*contentBlock])
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{name: "short", body: good[:size-1], want: "ended after"},
		{name: "long", body: append(bytes.Clone(good), 0), want: "longer"},
		{name: "shifted", body: append([]byte{0}, good[:size-1]...), want: "differs"},
		{name: "blocks swapped", body: swapped, want: fmt.Sprintf("at byte %d", contentBlock)},
		{name: "repeated block", body: append(bytes.Clone(good[:contentBlock]), good[:size-contentBlock]...), want: fmt.Sprintf("at byte %d", contentBlock)},
	}
	for _, off := range []int{0, 7, 8, contentBlock - 1, contentBlock + 3, int(size) - 1} {
		b := bytes.Clone(good)
		b[off] ^= 1
		tests = append(tests, struct {
			name string
			body []byte
			want string
		}{name: fmt.Sprintf("bit flip at %d", off), body: b, want: fmt.Sprintf("at byte %d", off)})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(tt.body)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (sig net) (x)) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 75 0 0 20 0 9 0 100 1000 200 18446744073709551615\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil || got != 2250*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 2.25s", got, err)
	}
	if _, err := cpuTimeOf(os.Getpid()); err != nil {
		t.Errorf("own cpu time: %v", err)
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := parseStatusKB(b, "VmHWM"); err != nil || n <= 0 {
		t.Errorf("own VmHWM = %d, %v", n, err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "4KiB": 4096, "256MiB": 256 << 20, "1GiB": 1 << 30, "2G": 2 << 30, " 1 MiB": 1 << 20} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1TiB", "1.5GiB"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) accepted", in)
		}
	}
	if got := formatBytes(4096); got != "4 KiB" {
		t.Errorf("formatBytes(4096) = %q", got)
	}
}

func TestStatistics(t *testing.T) {
	lat := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := percentile(lat, 50); p != 5 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(lat, 99); p != 10 {
		t.Errorf("p99 = %v", p)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if got := rotate([]string{"a", "b", "c"}, 4); strings.Join(got, "") != "bca" {
		t.Errorf("rotate = %v", got)
	}
	if got := fmtCount(1234567.4); got != "1,234,567" {
		t.Errorf("fmtCount = %q", got)
	}
}

// TestNullS3 serves generated GETs of any size and swallows PUTs.
func TestNullS3(t *testing.T) {
	srv := httptest.NewServer(newNullS3())
	t.Cleanup(srv.Close)
	u := &upstream{region: benchRegion}
	cl := newClient(u, false)
	t.Cleanup(cl.close)
	buf := make([]byte, 32<<10)
	for _, size := range []int64{0, 4096, nullSmallMax + 12345} {
		if _, err := cl.get(t.Context(), srv.URL+"/b/"+objectKey(size), newContent(size), buf); err != nil {
			t.Errorf("GET %d bytes: %v", size, err)
		}
	}
	c := newContent(3 << 20)
	if err := cl.put(t.Context(), srv.URL+"/b/put", &contentReader{c: c}, c.size); err != nil {
		t.Error(err)
	}
	if _, err := cl.get(t.Context(), srv.URL+"/b/other", c, buf); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("GET of an unknown key: %v", err)
	}
}

// TestBareHopSignsAcceptably: the yardstick's signatures pass a server that checks them.
func TestBareHopSignsAcceptably(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	if err := os.Mkdir(filepath.Join(gw.DataDir, "hop"), 0o755); err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(gw.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	tr := newBareTransport()
	t.Cleanup(tr.CloseIdleConnections)
	hop := httptest.NewServer(newBareHop(target, aws.Credentials{AccessKeyID: gw.AccessKey, SecretAccessKey: gw.SecretKey}, gw.Region, tr))
	t.Cleanup(hop.Close)
	cl := newClient(&upstream{}, false) // unsigned, as clients of a proxy send
	t.Cleanup(cl.close)
	c := newContent(1<<20 + 7)
	if err := cl.put(t.Context(), hop.URL+"/hop/"+objectKey(c.size), &contentReader{c: c}, c.size); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.get(t.Context(), hop.URL+"/hop/"+objectKey(c.size), c, make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}

	bad := httptest.NewServer(newBareHop(target, aws.Credentials{AccessKeyID: gw.AccessKey, SecretAccessKey: "wrong"}, gw.Region, tr))
	t.Cleanup(bad.Close)
	if _, err := cl.get(t.Context(), bad.URL+"/hop/"+objectKey(c.size), c, make([]byte, 32<<10)); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a wrong secret: %v, want 403", err)
	}
}

// TestShortRun runs the whole harness briefly against the null upstream: signet is built,
// every target and scenario runs, and the report has every row.
func TestShortRun(t *testing.T) {
	o, err := parseFlags([]string{"-upstream", "null", "-rounds", "2", "-duration", "100ms", "-warmup", "0",
		"-large-size", "4MiB", "-concurrency", "1,4"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	if err := run(ctx, o, &out, &progress); err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	report := out.String()
	for _, want := range []string{
		"### null upstream", "| **GET 4 KiB c=1** | req/s |", "| **PUT 4 KiB c=4** | req/s |",
		"| **PUT 4 MiB** | MB/s |", "| time to first byte ms |", "proxy peak RSS MiB", "signet / bare hop",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "NaN") {
		t.Errorf("report has NaN:\n%s", report)
	}
	t.Log("\n" + report)
}
