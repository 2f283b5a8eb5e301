package creds

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkCacheManyBuckets: a Cache over the local R2 minter holding credentials for
// 10, 1,000 and 10,000 distinct buckets (issue 16). It reports what each held key costs in
// memory (heap and goroutine stacks, measured after a GC) and times a Retrieve of a held
// key, which must stay flat as keys grow. Each held key keeps one refresh goroutine; a key
// no one retrieves for IdleLifetimes stops it and drops its credential.
func BenchmarkCacheManyBuckets(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("buckets=%d", n), func(b *testing.B) {
			m, err := NewR2Local("0123456789abcdef0123456789abcdef", "parent-key-id", "parent-secret-access-key-0123456789")
			if err != nil {
				b.Fatal(err)
			}
			before := memInUse()
			c, err := NewCache(m)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			keys := make([]Key, n)
			for i := range keys {
				keys[i] = Key{Bucket: fmt.Sprintf("tenant-%05d", i), Host: "0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com", Permission: PermObjectReadWrite}
				if _, err := c.Retrieve(context.Background(), keys[i]); err != nil {
					b.Fatal(err)
				}
			}
			perKey := float64(memInUse()-before) / float64(n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.Retrieve(context.Background(), keys[i%n]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(perKey, "B/key") // after the loop: its first iteration resets metrics
		})
	}
}

// memInUse is the heap and stack memory in use after a collection.
func memInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}
