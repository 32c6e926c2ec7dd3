package shard

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// The reference benchmarks make every figure a ratio: paddedPerGoroutine is
// the floor (an uncontended atomic add per goroutine, what perfect striping
// would cost), sharedAtomic and mutex are what a naive counter costs.

func BenchmarkCounterAdd(b *testing.B) {
	tab := NewTable(0)
	c := tab.Get("hot")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(1)
		}
	})
}

func BenchmarkPaddedPerGoroutine(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := new(cell)
		for pb.Next() {
			c.Add(1)
		}
	})
}

func BenchmarkSharedAtomic(b *testing.B) {
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.Add(1)
		}
	})
}

func BenchmarkMutex(b *testing.B) {
	var mu sync.Mutex
	var n int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			mu.Unlock()
		}
	})
}

// BenchmarkCounterAddStripes sweeps the stripe cap: 1 is a single shared
// cell, the cap is what DefaultMaxStripes picks for this machine.
func BenchmarkCounterAddStripes(b *testing.B) {
	for _, stripes := range []int{1, 2, 4, 8, 16, 64} {
		b.Run(fmt.Sprint("cap=", stripes), func(b *testing.B) {
			tab := NewTable(stripes)
			c := tab.Get("hot")
			if stripes == 1 {
				c.Add(0) // never contended on purpose: stays one cell
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.Add(1)
				}
			})
		})
	}
}

func BenchmarkTableGet(b *testing.B) {
	tab := NewTable(0)
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("pv:/page/%05d", i)
		tab.Get(names[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tab.Get(names[i%len(names)]).Add(1)
			i++
		}
	})
}
