package hll

import (
	"fmt"
	"sync/atomic"
	"testing"
)

func BenchmarkPos(b *testing.B) {
	for _, n := range []int{8, 16, 40} {
		m := string(make([]byte, n))
		b.Run(fmt.Sprint(n, "B"), func(b *testing.B) {
			for b.Loop() {
				Pos(m)
			}
		})
	}
}

// BenchmarkSketchAdd adds from every goroutine to one sketch: one of 100
// members, added again and again (sparse, until contention turns it
// dense), and one of a million members (dense; most Adds raise nothing,
// as in a real sketch).
func BenchmarkSketchAdd(b *testing.B) {
	members := make([]string, 1<<20)
	for i := range members {
		members[i] = member(i)
	}
	for _, tc := range []struct {
		name string
		n    int
	}{{"100-members", 100}, {"1M-members", len(members)}} {
		b.Run(tc.name, func(b *testing.B) {
			var s Sketch
			for _, m := range members[:tc.n] {
				s.Add(m)
			}
			var seed atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(7919))
				for pb.Next() {
					s.Add(members[i%tc.n])
					i++
				}
			})
		})
	}
}

func BenchmarkEstimate(b *testing.B) {
	var r Registers
	for i := range 1_000_000 {
		r.Set(Pos(member(i)))
	}
	for b.Loop() {
		r.Estimate()
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, n := range []int{100, 100_000} {
		var r Registers
		for i := range n {
			r.Set(Pos(member(i)))
		}
		us := r.Updates(nil)
		buf := Encode(nil, us)
		b.Run(fmt.Sprint(n, " members"), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				buf = Encode(buf[:0], us)
			}
		})
	}
}
