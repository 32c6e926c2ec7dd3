package serial_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/serial"
)

// Every figure here is meant as a ratio to the naive references in this
// file: one INCR per ID on the same Redis, and a shared in-memory atomic
// (the floor no allocator can beat). Run them together:
//
//	go test -run '^$' -bench . -benchmem ./serial/

var benchBlocks = []int64{100, 10_000, 1_000_000}

func benchAllocator(b *testing.B, size int64) *serial.Allocator {
	b.Helper()
	rdb := redistest.Client(b)
	a, err := serial.New(rdb, redistest.Prefix(b)+"bench", serial.Options{MinBlock: size, MaxBlock: size})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(context.Background()) })
	if _, err := a.Next(context.Background()); err != nil { // first block outside the timer
		b.Fatal(err)
	}
	return a
}

// takeParallel has every b.RunParallel goroutine take IDs from a.
func takeParallel(b *testing.B, a *serial.Allocator) {
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Next(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func reportBlocks(b *testing.B, a *serial.Allocator) {
	st := a.Stats()
	b.ReportMetric(float64(st.Blocks), "blocks")
	b.ReportMetric(float64(st.Waits), "waits")
}

// BenchmarkNext is one goroutine taking IDs; the block size sweep shows the
// round trip amortized over a block.
func BenchmarkNext(b *testing.B) {
	for _, size := range benchBlocks {
		b.Run(fmt.Sprintf("block=%d", size), func(b *testing.B) {
			a := benchAllocator(b, size)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := a.Next(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportBlocks(b, a)
		})
	}
}

// BenchmarkNextParallel is GOMAXPROCS goroutines sharing one Allocator.
func BenchmarkNextParallel(b *testing.B) {
	for _, size := range benchBlocks {
		b.Run(fmt.Sprintf("block=%d", size), func(b *testing.B) {
			a := benchAllocator(b, size)
			b.ReportAllocs()
			b.ResetTimer()
			takeParallel(b, a)
			b.StopTimer()
			reportBlocks(b, a)
		})
	}
}

// BenchmarkNextAdaptive starts at the default MinBlock and lets the size
// adapt, as an application with zero Options would.
func BenchmarkNextAdaptive(b *testing.B) {
	rdb := redistest.Client(b)
	a, err := serial.New(rdb, redistest.Prefix(b)+"adaptive", serial.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	takeParallel(b, a)
	b.StopTimer()
	reportBlocks(b, a)
	b.ReportMetric(float64(a.Stats().BlockSize), "final-block")
}

// BenchmarkNaiveINCR is the reference: one INCR round trip per ID.
func BenchmarkNaiveINCR(b *testing.B) {
	rdb := redistest.Client(b)
	key := redistest.Prefix(b) + "naive"
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := rdb.Incr(ctx, key).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := rdb.Incr(ctx, key).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkAtomicAdd is the in-memory floor: a shared counter, no Redis.
func BenchmarkAtomicAdd(b *testing.B) {
	var n atomic.Int64
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			n.Add(1)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n.Add(1)
			}
		})
	})
}

func BenchmarkAppendFormat(b *testing.B) {
	l := serial.Layout{Prefix: "ORD-", Date: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), Width: 6}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = serial.AppendFormat(buf[:0], int64(i), l)
	}
}
