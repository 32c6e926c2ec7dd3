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
// every ID. The price is order: IDs still increase within a lane, and so
// within a goroutine that keeps its lane, but not across goroutines.
//
// A lane takes its chunks from the block under Allocator.mu (nextSlow), so
// dropLocked can end every chunk in the same step as the block: after a
// regression or Close no chunk issues another ID.

// maxChunk caps the IDs a lane claims from the block at once. A claim takes
// the Allocator's mutex, so it is spread over enough IDs to cost well under
// 1% of them; what lanes hold when a process exits is lost, as the rest
// of a block is.
const maxChunk = 4096

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
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	ls := make([]lane, n)
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
	return a.nextSlow(ctx, l)
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
	n := min(max(b.size/int64(2*len(a.lanes)), 1), maxChunk)
	hi := b.used.Add(n)
	lo := hi - n
	if lo >= b.size {
		return 0, false
	}
	top := min(hi, b.size)
	c := &chunk{base: b.base + lo, size: top - lo}
	c.used.Store(1)
	l.chunk.Store(c)
	if lo < b.trigger && b.trigger <= top {
		a.prefetchLocked(b)
	}
	return c.base + 1, true
}

// dropLanesLocked ends every lane's chunk, as dropLocked ends the block.
func (a *Allocator) dropLanesLocked() {
	for i := range a.lanes {
		a.lanes[i].chunk.Load().used.Swap(poisoned)
	}
}
