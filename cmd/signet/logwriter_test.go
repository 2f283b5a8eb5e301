package main

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-proxy/signet/config"
)

type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogWriter: lines are buffered, not lost: Flush and Close write them out in order.
func TestLogWriter(t *testing.T) {
	var out syncBuilder
	lw := newLogWriter(&out)
	lw.Write([]byte("one\n"))
	lw.Write([]byte("two\n"))
	if err := lw.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "one\ntwo\n" {
		t.Errorf("after Flush: %q", got)
	}
	lw.Write([]byte("three\n"))
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "one\ntwo\nthree\n" {
		t.Errorf("after Close: %q", got)
	}
}

// TestJSONLogDurations: JSON logs give durations in seconds, as Prometheus and log tooling
// expect, not slog's raw nanoseconds; text logs keep Go's readable form.
func TestJSONLogDurations(t *testing.T) {
	for _, tt := range []struct{ format, want string }{
		{"json", `"duration":0.0015`},
		{"text", "duration=1.5ms"},
	} {
		t.Run(tt.format, func(t *testing.T) {
			var out strings.Builder
			logger, err := newLogger(&out, config.Log{Format: tt.format, Level: "info"})
			if err != nil {
				t.Fatal(err)
			}
			logger.Info("request", slog.Duration("duration", 1500*time.Microsecond))
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("log %q lacks %q", out.String(), tt.want)
			}
		})
	}
}
