package main

import (
	"strings"
	"sync"
	"testing"
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
