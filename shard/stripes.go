package shard

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"unsafe"
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
// A goroutine's stripe is a multiplicative hash of probe ^ salt. Goroutine
// stacks are reused, so without the salt two goroutines whose probes
// collide would collide on every run; a CAS failure at full size re-draws
// the salt, reshuffling goroutines over stripes until the busy ones stop
// colliding (what LongAdder does per thread by re-probing). The salt goes
// in before the hash: XORed after it, it would keep colliding pairs
// together.
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

// cell returns the calling goroutine's cell. Fibonacci hashing spreads
// neighbouring stacks over the whole table; the top bits are the
// well-mixed ones.
func (s *stripes) cell() *cell {
	return &s.cells[((probe()^s.salt.Load())*golden>>32)&s.mask]
}

// golden is 2^64 divided by the golden ratio. Multiplying by it is
// Fibonacci hashing: it spreads neighbouring inputs over the top bits.
const golden = 0x9E3779B97F4A7C15

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
	return ceilPow2(2 * runtime.GOMAXPROCS(0))
}

func ceilPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// probe returns a per-goroutine value used to pick a stripe: the address
// of a local variable, in units of 2 KiB. Goroutine stacks are disjoint and
// at least 2 KiB apart, so distinct goroutines get distinct, stable values
// without goroutine-local storage. The address is only hashed, never
// dereferenced.
//
//go:nosplit
func probe() uint64 {
	var x byte
	return uint64(uintptr(unsafe.Pointer(&x))) >> 11
}
