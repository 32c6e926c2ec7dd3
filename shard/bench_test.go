package shard

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkCounterAdd runs Counter.Add from parallel goroutines next to the
// references that make each figure a ratio, in the same run:
// PaddedPerGoroutine is the floor (an uncontended atomic add per
// goroutine, what perfect striping would cost), SharedAtomic and Mutex are
// what a naive counter costs.
//
// PaddedPerGoroutineYielding is the floor with Counter.Add's yield (see
// Counter.sample), and shows what the harness does to any benchmark whose
// goroutines yield: now and then a whole run takes 4× as long. RunParallel
// allocates each worker goroutine a testing.PB of 32 bytes, whose Next
// writes it on every iteration. When a worker yields before the idle
// processor has woken up to take the other, that other starts on the same
// processor, its PB comes next in the same span, and with even odds both
// share a cache line, which the two cores then pass back and forth on every
// add: 11–14 ns at -cpu 2. Of 150 short runs each (-benchtime 3000000x),
// Counter and the yielding floor were slow in 11 and 12, 9 and 12 of them
// with both PBs in one line (no fast run had them there); the floor that
// never yields, in none.
func BenchmarkCounterAdd(b *testing.B) {
	b.Run("Counter", func(b *testing.B) {
		c := NewTable(0).Get("hot")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Add(1)
			}
		})
	})
	b.Run("SharedAtomic", func(b *testing.B) {
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n.Add(1)
			}
		})
	})
	b.Run("PaddedPerGoroutine", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			c := new(cell)
			for pb.Next() {
				c.Add(1)
			}
		})
	})
	b.Run("PaddedPerGoroutineYielding", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			c := new(cell)
			for pb.Next() {
				if v := c.Add(1); sampled(v) {
					yieldSometimes()
				}
			}
		})
	})
	b.Run("Mutex", func(b *testing.B) {
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
	})
}

// BenchmarkCounterAddStripes sweeps the stripe cap: 1 is a single shared
// cell, the cap is what DefaultMaxStripes picks for this machine.
func BenchmarkCounterAddStripes(b *testing.B) {
	for _, stripes := range []int{1, 2, 4, 8, 16, 64} {
		b.Run(fmt.Sprint("cap=", stripes), func(b *testing.B) {
			c := NewTable(stripes).Get("hot")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.Add(1)
				}
			})
		})
	}
}

// BenchmarkTableGet looks up and adds to 10,000 names, each goroutine
// walking them from its own starting point.
func BenchmarkTableGet(b *testing.B) {
	tab := NewTable(0)
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("pv:/page/%05d", i)
		tab.Get(names[i])
	}
	var start atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(start.Add(7919) % uint64(len(names)))
		for pb.Next() {
			tab.Get(names[i]).Add(1)
			if i++; i == len(names) { // not i%len(names): a division costs a fifth of a Get
				i = 0
			}
		}
	})
}
