package serial

import (
	"context"
	"runtime"
	"sync/atomic"

	"github.com/abacus-go/abacus/internal/stripe"
)

// Options.Unordered gives every Allocator lanes: a few cache-line padded
// slots, each holding a chunk of the current block, and picks a goroutine's
// lane by a hash of its stack (package internal/stripe). Next then costs an
// atomic add on the lane's chunk, which the goroutines running at the same
// moment rarely share, instead of one on the block, which they all do: on
// a busy multi-core process the block's cache line moves between cores at
// every ID. The price is order: a goroutine's lane depends on where its
// stack is and how deep the call, so successive IDs from one goroutine may
// come from different lanes, whose chunks are of different ages.
//
// A lane takes its chunks from the block under Allocator.mu (nextSlow), so
// dropLocked can end every chunk in the same step as the block: after a
// regression or Close no chunk issues another ID. While a block's chunks
// (chunkSize) would be smaller than minChunk IDs (the first blocks, or a
// small MaxBlock), Next takes its ID from the block itself, as without
// lanes, rather than take the mutex every few IDs.

// maxChunk caps the IDs a lane claims from the block at once. A claim takes
// the Allocator's mutex, so it is spread over enough IDs to cost well under
// 1% of them; what lanes hold when a process exits is lost, as the rest
// of a block is.
const maxChunk = 4096

// minChunk is the smallest chunk worth a lane: below it, see nextUnordered.
const minChunk = 64

// chunk is a lane's range of IDs (base, base+size], claimed from a block.
// Like block, only used changes once it is published, and it fills a
// 64-byte size class of its own.
type chunk struct {
	used atomic.Int64 // offsets claimed so far; may run past size
	base int64
	size int64
	_    [40]byte
}

// lane holds a chunk on a cache line of its own.
type lane struct {
	chunk atomic.Pointer[chunk]
	_     [56]byte
}

// newLanes returns 4×GOMAXPROCS lanes (a power of two), each with an
// empty chunk, so that two goroutines running at once share a lane one
// time in eight or less.
func newLanes() []lane {
	ls := make([]lane, stripe.Pow2(4*runtime.GOMAXPROCS(0)))
	for i := range ls {
		ls[i].chunk.Store(&chunk{})
	}
	return ls
}

// nextUnordered is Next for Options.Unordered.
func (a *Allocator) nextUnordered(ctx context.Context) (int64, error) {
	l := &a.lanes[stripe.Index(a.salt, uint64(len(a.lanes)-1))]
	c := l.chunk.Load()
	if off := c.used.Add(1); off <= c.size {
		return c.base + off, nil
	}
	if b := a.cur.Load(); a.chunkSize(b) < minChunk {
		if first, got, trig := b.claim(1); got == 1 {
			if trig {
				a.prefetch(b)
			}
			return first, nil
		}
		return a.nextSlow(ctx, nil)
	}
	return a.nextSlow(ctx, l)
}

// chunkSize is how many IDs of b a lane claims at once: b shared among
// twice as many lanes, within [1, maxChunk]. It runs at every lane miss,
// which is every Next while blocks are too small for chunks: the lane
// count is a power of two, so a shift divides, not a 64-bit division.
func (a *Allocator) chunkSize(b *block) int64 {
	return min(max(b.size>>a.chunkShift, 1), maxChunk)
}

// refillLocked returns the next ID of l's chunk if another goroutine
// refilled it meanwhile, or else claims a new chunk from b, installs it and
// returns its first ID. It reports false when b is used up.
func (a *Allocator) refillLocked(b *block, l *lane) (int64, bool) {
	if c := l.chunk.Load(); c.used.Load() < c.size {
		if off := c.used.Add(1); off <= c.size {
			return c.base + off, true
		}
	}
	first, got, trig := b.claim(a.chunkSize(b))
	if got == 0 {
		return 0, false
	}
	c := &chunk{base: first - 1, size: got}
	c.used.Store(1)
	l.chunk.Store(c)
	if trig {
		a.prefetchLocked(b)
	}
	return first, true
}

// heldLocked is how many IDs the lanes' chunks hold: claimed from their
// blocks, so counted there, but not issued yet.
func (a *Allocator) heldLocked() int64 {
	var n int64
	for i := range a.lanes {
		c := a.lanes[i].chunk.Load()
		n += c.size - min(max(c.used.Load(), 0), c.size)
	}
	return n
}

// dropLanesLocked ends every lane's chunk, as dropLocked ends the block,
// and returns how many IDs they held: abandoned, never issued.
func (a *Allocator) dropLanesLocked() int64 {
	var n int64
	for i := range a.lanes {
		c := a.lanes[i].chunk.Load()
		n += c.size - min(c.used.Swap(poisoned), c.size)
	}
	return n
}
