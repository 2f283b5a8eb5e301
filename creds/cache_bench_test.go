package creds

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkCacheManyBuckets: a Cache over the local R2 minter asked for credentials for
// 10, 1,000 and 10,000 distinct buckets (issue 16), with the default MaxKeys and with a cap
// of 10,000. It reports the memory the cache holds then (heap and goroutine stacks, after a
// GC), in total and per bucket asked for, and times a Retrieve of a held key (one of the
// last 1,000 asked for), which must stay flat as keys grow. Each held key keeps its
// credential and one refresh goroutine; beyond MaxKeys the least recently used is dropped.
func BenchmarkCacheManyBuckets(b *testing.B) {
	for _, maxKeys := range []int{0, 10000} {
		for _, n := range []int{10, 1000, 10000} {
			b.Run(fmt.Sprintf("max_keys=%d/buckets=%d", maxKeys, n), func(b *testing.B) {
				m, err := NewR2Local("0123456789abcdef0123456789abcdef", "parent-key-id", "parent-secret-access-key-0123456789")
				if err != nil {
					b.Fatal(err)
				}
				before := memInUse()
				c, err := NewCache(m, func(o *CacheOptions) { o.MaxKeys = maxKeys })
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
				held := memInUse() - before
				hot := keys[max(0, n-1000):]
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := c.Retrieve(context.Background(), hot[i%len(hot)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				// After the loop: its first iteration resets reported metrics.
				b.ReportMetric(float64(held)/(1<<20), "MiB-held")
				b.ReportMetric(float64(held)/float64(n), "B/bucket")
			})
		}
	}
}

// memInUse is the heap and stack memory in use after a collection.
func memInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}
