package proxy

import (
	"fmt"
	"path"
	"testing"
)

// testTable is a Table of the given patterns, in order, each routed nowhere in particular.
func testTable(patterns ...string) *Table {
	t := &Table{exact: map[string]*Route{}}
	for _, p := range patterns {
		r := &Route{Pattern: p, glob: literalPrefix(p) != p}
		if r.glob {
			t.globs = append(t.globs, r)
		} else {
			t.exact[p] = r
		}
	}
	t.globIndex = newGlobIndex(t.globs)
	return t
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		bucket   string
		want     string // the pattern of the route found; "" for none
	}{
		{name: "exact before glob", patterns: []string{"logs-*", "logs-a"}, bucket: "logs-a", want: "logs-a"},
		{name: "first glob wins, longer prefix later", patterns: []string{"l*", "logs-*"}, bucket: "logs-1", want: "l*"},
		{name: "first glob wins, shorter prefix later", patterns: []string{"logs-*", "l*"}, bucket: "logs-1", want: "logs-*"},
		{name: "catch-all last", patterns: []string{"tenant-?-x", "*"}, bucket: "tenant-1-x", want: "tenant-?-x"},
		{name: "catch-all first", patterns: []string{"*", "tenant-?-x"}, bucket: "tenant-1-x", want: "*"},
		{name: "same prefix, second matches", patterns: []string{"data-*-eu", "data-*-us"}, bucket: "data-7-us", want: "data-*-us"},
		{name: "prefix longer than the name", patterns: []string{"averylongprefix-*"}, bucket: "ave", want: ""},
		{name: "class", patterns: []string{"b[0-9]*"}, bucket: "b7x", want: "b[0-9]*"},
		{name: "escape", patterns: []string{`we\-*`}, bucket: "we-1", want: `we\-*`},
		{name: "no match", patterns: []string{"logs-*", "exact"}, bucket: "other", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testTable(tt.patterns...).Lookup(tt.bucket)
			got := ""
			if r != nil {
				got = r.Pattern
			}
			if got != tt.want {
				t.Errorf("Lookup(%q) = %q, want %q", tt.bucket, got, tt.want)
			}
		})
	}
}

// TestLookupAgreesWithLinear checks the glob index against trying every glob in order.
func TestLookupAgreesWithLinear(t *testing.T) {
	patterns := []string{"a*", "ab*", "abc-?", "*c", "x[a-c]*", "abc-*", "*", "tenant-1-*", "tenant-*-eu", "t?nant-*"}
	names := []string{"a", "ab", "abc", "abc-1", "abc-12", "xbq", "xdq", "tenant-1-eu", "tenant-2-eu", "tanant-3", "zzz", "c"}
	for n := 1; n <= len(patterns); n++ {
		for rot := range n {
			ps := append(append([]string(nil), patterns[rot:n]...), patterns[:rot]...)
			tab := testTable(ps...)
			for _, b := range names {
				want := ""
				for _, p := range ps {
					if ok, _ := path.Match(p, b); ok {
						want = p
						break
					}
				}
				got := ""
				if r := tab.Lookup(b); r != nil {
					got = r.Pattern
				}
				if got != want {
					t.Errorf("patterns %q: Lookup(%q) = %q, want %q", ps, b, got, want)
				}
			}
		}
	}
}

// BenchmarkLookup: routing cost from 10 to 10,000 routes, exact and glob (issue 16: flat).
// The bucket looked up is routed by the last route of each kind, the worst case for a scan.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		var patterns []string
		for i := range n / 2 {
			patterns = append(patterns, fmt.Sprintf("bucket-%05d", i), fmt.Sprintf("tenant-%05d-*", i))
		}
		tab := testTable(patterns...)
		for _, c := range []struct{ kind, bucket string }{
			{"exact", fmt.Sprintf("bucket-%05d", n/2-1)},
			{"glob", fmt.Sprintf("tenant-%05d-logs", n/2-1)},
			{"unrouted", "nobody-here"},
		} {
			b.Run(fmt.Sprintf("%s/routes=%d", c.kind, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if r := tab.Lookup(c.bucket); (r == nil) != (c.kind == "unrouted") {
						b.Fatalf("Lookup(%q) = %v", c.bucket, r)
					}
				}
			})
		}
	}
}
