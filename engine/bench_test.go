package engine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// The engine's hot paths, with the background flusher writing to a real
// Redis every 100ms. Compare CounterAdd with ./shard's references
// (CounterAdd/PaddedPerGoroutine is the floor, CounterAdd/SharedAtomic
// the naive counter), run in the same `go test -bench Add ./shard ./engine`;
// EngineAdd carries its own.

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
// 10,000 names, next to what a user would write instead: a map under a
// sync.RWMutex and a sync.Map, of *atomic.Int64 created on first use
// (and never written anywhere). Every name exists before the timer starts,
// so all three measure the lookup of an existing name.
func BenchmarkEngineAdd(b *testing.B) {
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("pv:/page/%05d", i)
	}
	b.Run("engine", func(b *testing.B) {
		e := benchEngine(b)
		for _, name := range names {
			e.Add(name, 1)
		}
		w := walk(b, names)
		b.RunParallel(func(pb *testing.PB) {
			for i := w.start(); pb.Next(); i = w.next(i) {
				if err := e.Add(names[i], 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		if err := e.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("RWMutexMap", func(b *testing.B) {
		benchAddByName(b, names, &rwMutexMap{m: make(map[string]*atomic.Int64)})
	})
	b.Run("SyncMap", func(b *testing.B) {
		benchAddByName(b, names, new(syncMap))
	})
}

// benchAddByName is BenchmarkEngineAdd's loop for a reference counter by
// name. The engine row calls Engine.Add directly, as its users do; calling
// the references through the interface instead of directly made no
// measurable difference (19.7 against 19.6 ns for RWMutexMap).
func benchAddByName(b *testing.B, names []string, m interface{ add(string, int64) }) {
	for _, name := range names {
		m.add(name, 1)
	}
	w := walk(b, names)
	b.RunParallel(func(pb *testing.PB) {
		for i := w.start(); pb.Next(); i = w.next(i) {
			m.add(names[i], 1)
		}
	})
}

// rwMutexMap is the counter by name most Go programs would write.
type rwMutexMap struct {
	mu sync.RWMutex
	m  map[string]*atomic.Int64
}

func (m *rwMutexMap) add(name string, delta int64) {
	m.mu.RLock()
	n := m.m[name]
	m.mu.RUnlock()
	if n == nil {
		m.mu.Lock()
		if n = m.m[name]; n == nil {
			n = new(atomic.Int64)
			m.m[name] = n
		}
		m.mu.Unlock()
	}
	n.Add(delta)
}

// syncMap is a counter by name on sync.Map, which is built for keys
// written once and read many times.
type syncMap struct{ m sync.Map }

func (m *syncMap) add(name string, delta int64) {
	n, ok := m.m.Load(name)
	if !ok {
		n, _ = m.m.LoadOrStore(name, new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(delta)
}

// nameWalk spreads the goroutines of a parallel benchmark over a list of
// names: each starts at its own point and walks the list round.
type nameWalk struct {
	n    int
	seed atomic.Uint64
}

// walk resets b's timer and returns a walk over names.
func walk(b *testing.B, names []string) *nameWalk {
	b.ReportAllocs()
	b.ResetTimer()
	return &nameWalk{n: len(names)}
}

func (w *nameWalk) start() int { return int(w.seed.Add(7919) % uint64(w.n)) }

// next is i+1 wrapped round; not (i+1)%n, a division that would cost a
// fifth of what is measured.
func (w *nameWalk) next(i int) int {
	if i++; i == w.n {
		return 0
	}
	return i
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
// each, outside the timer): take, batches, script calls, settle. The
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
