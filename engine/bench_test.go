package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// The engine's hot paths, with the background flusher writing to a real
// Redis every 100ms. Compare with ./shard's reference benchmarks
// (PaddedPerGoroutine is the floor, SharedAtomic the naive counter), run
// in the same `go test -bench . ./shard ./engine`.

func benchEngine(b *testing.B) *engine.Engine {
	b.Helper()
	rdb := redistest.Client(b)
	e := newEngine(b, rdb, engine.Options{Namespace: redistest.Prefix(b)})
	return e
}

func BenchmarkCounterAdd(b *testing.B) {
	e := benchEngine(b)
	c, _ := e.Counter("pv:/home")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
	b.StopTimer()
	if err := e.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEngineAdd looks the counter up by name on every call, over
// 10,000 names.
func BenchmarkEngineAdd(b *testing.B) {
	e := benchEngine(b)
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("pv:/page/%05d", i)
	}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if err := e.Add(names[i%len(names)], 1); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.StopTimer()
	if err := e.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkNaiveINCR is one INCR round trip per event on the same Redis:
// the cost the engine removes.
func BenchmarkNaiveINCR(b *testing.B) {
	rdb := redistest.Client(b)
	key := redistest.Prefix(b) + "naive"
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := rdb.Incr(ctx, key).Err(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEngineFlush measures Flush with 100,000 dirty counters (one Add
// each, outside the timer): drain, batches, script calls, settle. The
// raw-pipeline reference sends the same INCRBYs as go-redis pipelines of
// 16,384 commands (the default MaxPipelineKeys), and keeps no count of
// what was sent.
func BenchmarkEngineFlush(b *testing.B) {
	const n = 100000
	rdb := redistest.Client(b)
	ctx := context.Background()
	b.Run(fmt.Sprintf("keys=%d/engine", n), func(b *testing.B) {
		e := newEngine(b, rdb, engine.Options{Namespace: redistest.Prefix(b), FlushInterval: time.Hour})
		counters := make([]*engine.Counter, n)
		for i := range counters {
			counters[i], _ = e.Counter(fmt.Sprintf("pv:/page/%06d", i))
		}
		flush := func() {
			for _, c := range counters {
				c.Inc()
			}
			b.StartTimer()
			if err := e.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
		}
		flush() // loads the script
		b.ReportAllocs()
		b.ResetTimer()
		b.StopTimer()
		for range b.N {
			flush()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
	})
	b.Run(fmt.Sprintf("keys=%d/raw-pipeline", n), func(b *testing.B) {
		ns := redistest.Prefix(b)
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("%spv:/page/%06d", ns, i)
		}
		b.ReportAllocs()
		for range b.N {
			for lo := 0; lo < n; lo += 16384 {
				pipe := rdb.Pipeline()
				for _, k := range keys[lo:min(lo+16384, n)] {
					pipe.IncrBy(ctx, k, 1)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
	})
}
