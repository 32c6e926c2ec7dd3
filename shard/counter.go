package shard

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
)

// Counter is a write-behind int64 counter. Its zero value is not usable:
// counters come from Table.Get. It is safe for concurrent use: Add from any
// number of goroutines.
//
// A Counter offers what a holder of it may do: add, read, pin, discard.
// Moving its delta out and accounting for it (Table.Take, Settle, Restore)
// belongs to the owner of its Table, so a handle passed around cannot
// settle an amount that was never written or restore one twice.
type Counter struct {
	base     atomic.Int64            // the single cell of an uncontended counter
	stripes  atomic.Pointer[stripes] // non-nil once contention was seen
	inflight atomic.Int64            // taken but neither settled nor restored
	next     atomic.Pointer[Counter] // link on its dirty list
	table    *Table                  // owner of the dirty lists
	name     string                  // immutable
	dirty    atomic.Bool             // on its dirty list, or about to be
	flags    atomic.Uint32           // pinned, touched; the fields fill one cache line
}

// Counter flags.
const (
	pinned  = 1 << iota // never evicted as idle (see Table.SweepIdle)
	touched             // taken since the last sweep of its shard
)

// Pin keeps c in its table however long it stays idle: for counters
// someone holds a handle on. Only Table.Delete removes a pinned counter.
func (c *Counter) Pin() {
	if c.flags.Load()&pinned == 0 {
		c.flags.Or(pinned)
	}
}

// Name returns the counter's name.
func (c *Counter) Name() string { return c.name }

// Add adds delta. It never blocks or allocates.
//
// The add itself is one atomic add, as cheap as a shared atomic counter
// when uncontended. Contention cannot be read off an atomic add the way
// LongAdder reads it off a failed compare-and-swap, so Add samples it: on
// about one add in 64 it reloads the cell, and a value changed since its
// own add means another core wrote the cell in between (see contended).
func (c *Counter) Add(delta int64) {
	n := &c.base
	s := c.stripes.Load()
	if s != nil {
		n = &s.cell().Int64
	}
	if v := n.Add(delta); sampled(v) {
		c.sample(s, n, v)
	}
	if !c.dirty.Load() {
		c.markDirty()
	}
}

// sampled picks about one value in 64 for Add's contention check. It
// hashes the whole value, so whatever the deltas (multiples of 64
// included) the cell's successive values hit it at that rate.
func sampled(v int64) bool {
	return uint64(v)*golden>>(64-sampleBits) == 0
}

// sampleBits sets Add's sampling rate of contention checks: one in
// 2^sampleBits. The check is a plain load, but a sparse one keeps the
// common path a single atomic add.
const sampleBits = 6

// yieldBits sets how often Add yields the processor: on one add in
// 2^yieldBits, a subset of the sampled ones (see sample).
const yieldBits = 14

// sample is Add's rare path, for the adds that sampled picked: v is what
// the add to n left. A value changed since means another core wrote the
// cell in between (see contended).
//
// It also yields the processor on about one add in 2^yieldBits. Goroutines
// that do nothing but Add never block, so Go's scheduler rotates them only
// by preemption (10 ms slices), and a goroutine woken by the network — the
// flusher reading Redis' reply — waits in the global run queue, which a
// processor checks only every 61 scheduling rounds: with 64 such
// goroutines on 2 cores, each network wait of a flush took about a
// second. A yield every ~16k adds (microseconds) makes those rounds come
// ~100× faster, at a cost too small to measure; Adds that block
// elsewhere (request handlers) are unaffected either way. The yield is
// drawn at random, not from v as the sample is: a cell starts from zero
// after every take, and the first value that a hash of v picks at this
// rate is in the thousands, which few of thousands of counters added to by
// name reach between two flushes, so their adders would hardly ever yield.
// Nor do they reach many sampled values: the first for adds of one is 34.
// So markDirty, which the first add to a counter after each take runs,
// draws a yield too.
//
//go:noinline
func (c *Counter) sample(s *stripes, n *atomic.Int64, v int64) {
	if n.Load() != v {
		c.contended(s)
	}
	yieldSometimes()
}

// yieldSometimes yields the processor on one call in
// 2^(yieldBits-sampleBits): on about one add in 2^yieldBits when called on
// the sampled ones, and on one counter in 256 marked dirty.
func yieldSometimes() {
	if rand.Uint64()>>(64-(yieldBits-sampleBits)) == 0 {
		runtime.Gosched()
	}
}

// contended is taken when Add saw the cell it had just written change
// under it: another core wrote it (or, rarely, a take or Restore did;
// growing then costs memory, never a count). s is the stripes Add used,
// nil for the base cell. contended grows the stripes, up to the table's
// cap, or at full size re-draws the salt so that colliding goroutines move
// apart.
//
//go:noinline
func (c *Counter) contended(s *stripes) {
	max := c.table.maxStripes
	switch {
	case max == 1: // the table keeps counters single cells, contended or not
	case s == nil:
		c.stripes.CompareAndSwap(nil, newStripes(2))
	case len(s.cells) < max:
		// Adds that loaded s before the swap still land in s, so the grown
		// array keeps s on its chain for sum and empty to read.
		grown := newStripes(len(s.cells) * 2)
		grown.prev = s
		c.stripes.CompareAndSwap(s, grown)
	default:
		s.salt.Store(rand.Uint64()) // full size: reshuffle instead
	}
}

// markDirty puts c on one of its table's dirty lists, once per take, and
// sometimes yields (see sample): adds spread over many counters come
// here more often than to sample.
//
//go:noinline
func (c *Counter) markDirty() {
	if c.dirty.CompareAndSwap(false, true) {
		c.table.push(c)
	}
	yieldSometimes()
}

// Load returns the delta added since the last take. Adds running
// concurrently may or may not be included.
func (c *Counter) Load() int64 {
	n := c.base.Load()
	if s := c.stripes.Load(); s != nil {
		n += s.sum()
	}
	return n
}

// Unflushed returns Load plus the in-flight amount: everything added that
// has not been settled. It is exact only while no Take, Settle or Restore
// of c runs concurrently; callers that need that serialize them.
func (c *Counter) Unflushed() int64 { return c.Load() + c.inflight.Load() }

// InFlight returns the amount taken but not yet settled or restored.
func (c *Counter) InFlight() int64 { return c.inflight.Load() }

// take moves the delta accumulated since the last take into the in-flight
// amount and returns it. The dirty mark is cleared first, so an Add racing
// with take either lands in this take or re-marks c for the next one.
// Only Table.Take calls it, after taking c off the dirty list: taking from
// a counter still on the list could let an Add push it a second time.
func (c *Counter) take() int64 {
	if c.flags.Load()&touched == 0 {
		c.flags.Or(touched)
	}
	c.dirty.Store(false)
	n := c.base.Swap(0)
	if s := c.stripes.Load(); s != nil {
		n += s.empty()
	}
	c.inflight.Add(n)
	return n
}

// Discard drops the delta added since the last take (not the amount in
// flight) and returns it: for a delta Redis keeps refusing that its owner
// gives up on.
func (c *Counter) Discard() int64 {
	n := c.base.Swap(0)
	if s := c.stripes.Load(); s != nil {
		n += s.empty()
	}
	return n
}

// Stripes returns how many stripes c has: 1 until contention was seen.
func (c *Counter) Stripes() int {
	if s := c.stripes.Load(); s != nil {
		return len(s.cells)
	}
	return 1
}
