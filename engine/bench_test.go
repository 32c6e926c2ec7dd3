package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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
