package shard

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"

	"github.com/abacus-go/abacus/internal/stripe"
)

// cacheLine is the size stripes are padded to so that two stripes never
// share a line and ping-pong between cores.
const cacheLine = 64

// cell is one padded stripe.
type cell struct {
	atomic.Int64
	_ [cacheLine - 8]byte
}

// stripes is a power-of-two array of cells; a larger array replaces it
// when contention persists, keeping the one it replaced on prev because
// late Adds may still land there. mask = len(cells)-1.
//
// A goroutine's stripe is stripe.Index(salt, mask). Goroutine stacks are
// reused, so without the salt two goroutines whose probes collide would
// collide on every run; contention seen at full size (Counter.contended)
// re-draws the salt, reshuffling goroutines over stripes until the busy
// ones stop colliding (what LongAdder does per thread by re-probing).
type stripes struct {
	cells []cell
	mask  uint64
	salt  atomic.Uint64
	prev  *stripes
}

func newStripes(n int) *stripes {
	s := &stripes{cells: make([]cell, n), mask: uint64(n - 1)}
	s.salt.Store(rand.Uint64())
	return s
}

// cell returns the calling goroutine's cell.
func (s *stripes) cell() *cell {
	return &s.cells[stripe.Index(s.salt.Load(), s.mask)]
}

// golden is Fibonacci hashing's multiplier (see stripe.Golden).
const golden = stripe.Golden

// sum reads every cell of s and its predecessors; concurrent Adds may or
// may not be included.
func (s *stripes) sum() int64 {
	var n int64
	for ; s != nil; s = s.prev {
		for i := range s.cells {
			n += s.cells[i].Load()
		}
	}
	return n
}

// empty swaps every cell of s and its predecessors with zero and returns
// what they held.
func (s *stripes) empty() int64 {
	var n int64
	for ; s != nil; s = s.prev {
		for i := range s.cells {
			n += s.cells[i].Swap(0)
		}
	}
	return n
}

// DefaultMaxStripes is the stripe cap of a Table with no explicit cap: the
// smallest power of two ≥ 2×GOMAXPROCS (at least 2), so that the goroutines
// running at any moment rarely share a stripe.
func DefaultMaxStripes() int {
	return stripe.Pow2(2 * runtime.GOMAXPROCS(0))
}
