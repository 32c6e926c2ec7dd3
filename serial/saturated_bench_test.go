package serial_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/serial"
)

// The saturated benchmarks run many more goroutines than cores, all
// CPU-bound, the load under which prefetch is hardest: the goroutine that
// fetches the next block, readied by the network poller when Redis answers,
// queues behind the callers for a P. Each compares an Allocator with default
// Options (and BenchmarkNextSaturated one with Unordered too) to the same
// goroutines adding to one shared atomic.Int64, the ceiling of any
// allocator whose IDs increase within a process, which Unordered's do not
// across goroutines. Run them side by side, in interleaved runs, long
// enough for the timed part to span several blocks (a saturated
// allocator's lasts seconds):
//
//	go test -c -o serial.test ./serial/
//	for i in 1 2 3 4 5 6; do ./serial.test -test.run '^$' -test.bench 'Saturated' -test.benchtime 20s; done
//
// waits and blocks count, during the timed part, calls that found no ID in
// hand and had to wait for Redis, and blocks fetched. cpu-ns/op is the
// process's CPU time per call: on a machine shared with other work, IDs/s
// measures as much the CPU the OS grants the process as the code (a process
// whose threads sleep now and then, as callers waiting for Redis make them,
// gets more of it), while cpu-ns/op compares the code alone.

// saturatedGoroutines is how many goroutines share one Allocator, whatever
// GOMAXPROCS (rounded up to a multiple of it): as many as go run ./bench
// starts by default.
const saturatedGoroutines = 64

// warmUp is how long a saturated Allocator runs before it is timed, for its
// block size to grow from MinBlock to the rate, as a service's does in its
// first seconds.
const warmUp = 5 * time.Second

// saturate makes b.RunParallel start saturatedGoroutines goroutines.
func saturate(b *testing.B) {
	p := runtime.GOMAXPROCS(0)
	b.SetParallelism((saturatedGoroutines + p - 1) / p)
}

// sharedCounter is the reference: one atomic on a cache line of its own.
type sharedCounter struct {
	_ [64]byte
	n atomic.Int64
	_ [56]byte
}

// BenchmarkNextSaturated is the throughput of Next from 64 goroutines
// against the shared atomic, in IDs/s.
func BenchmarkNextSaturated(b *testing.B) {
	b.Run("atomic", func(b *testing.B) {
		var c sharedCounter
		saturate(b)
		b.ReportAllocs()
		cpu := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.n.Add(1)
			}
		})
		reportRate(b, cpu)
	})
	for _, unordered := range []bool{false, true} {
		name := "serial"
		if unordered {
			name = "serial-unordered"
		}
		a := saturatedAllocator(b, serial.Options{Unordered: unordered})
		b.Run(name, func(b *testing.B) {
			saturate(b)
			b.ReportAllocs()
			before, cpu := a.Stats(), cpuTime()
			b.ResetTimer()
			takeParallel(b, a)
			b.StopTimer()
			reportRate(b, cpu)
			reportFetches(b, before, a.Stats())
		})
	}
}

// BenchmarkNextSaturatedLatency times calls of the same load and reports
// percentiles in ns. Each includes part of the two clock reads timing it,
// as the atomic's show.
func BenchmarkNextSaturatedLatency(b *testing.B) {
	var c sharedCounter
	b.Run("atomic", func(b *testing.B) {
		timeEach(b, func() error { c.n.Add(1); return nil })
	})
	a := saturatedAllocator(b, serial.Options{})
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		before := a.Stats()
		timeEach(b, func() error { _, err := a.Next(ctx); return err })
		reportFetches(b, before, a.Stats())
	})
}

// sampleEvery is how many calls timeEach makes per call it times: timing
// all of them (two clock reads, ~40 ns each here) would slow the load
// several times over, and a block lasting seconds with it. The sample does
// not depend on where calls fall in a block, so its percentiles are the
// load's.
const sampleEvery = 16

// timeEach runs call from saturatedGoroutines goroutines, timing one call in
// sampleEvery, and reports the percentiles of the latencies.
func timeEach(b *testing.B, call func() error) {
	saturate(b)
	var (
		mu  sync.Mutex
		all latencies
	)
	cpu := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		h := new(latencies)
		for i := 0; pb.Next(); i++ {
			var t0 time.Time
			if i%sampleEvery == 0 {
				t0 = time.Now()
			}
			err := call()
			if !t0.IsZero() {
				h.add(time.Since(t0))
			}
			if err != nil {
				b.Error(err)
				break
			}
		}
		mu.Lock()
		all.merge(h)
		mu.Unlock()
	})
	b.StopTimer()
	reportRate(b, cpu)
	b.ReportMetric(float64(all.quantile(0.5)), "p50-ns")
	b.ReportMetric(float64(all.quantile(0.99)), "p99-ns")
	b.ReportMetric(float64(all.quantile(0.999)), "p999-ns")
}

// saturatedAllocator returns an Allocator with opts on a fresh key, after
// warmUp of saturated load.
func saturatedAllocator(b *testing.B, opts serial.Options) *serial.Allocator {
	b.Helper()
	rdb := redistest.Client(b)
	a, err := serial.New(rdb, redistest.Prefix(b)+"saturated", opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(context.Background()) })
	ctx := context.Background()
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		errs = make(chan error, saturatedGoroutines)
	)
	for range saturatedGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := a.Next(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(warmUp)
	stop.Store(true)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	st := a.Stats()
	b.Logf("warm-up: %d IDs, %d blocks, %d waits, block size now %d, %.0f IDs/s, fetch time %v",
		st.Issued, st.Blocks, st.Waits, st.BlockSize, st.Rate, st.FetchTime)
	return a
}

// reportRate reports b's throughput in IDs (or adds) per second, and the
// process's CPU time per call since cpu (a cpuTime), when it is known.
func reportRate(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IDs/s")
	if now := cpuTime(); now > 0 {
		b.ReportMetric(float64(now-cpu)/float64(b.N), "cpu-ns/op")
	}
}

// reportFetches reports the waits for Redis and the blocks fetched between
// two snapshots.
func reportFetches(b *testing.B, before, after serial.Stats) {
	b.ReportMetric(float64(after.Waits-before.Waits), "waits")
	b.ReportMetric(float64(after.Blocks-before.Blocks), "blocks")
}
