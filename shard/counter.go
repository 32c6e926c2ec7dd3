package shard

import (
	"math/rand/v2"
	"sync/atomic"
)

// Counter is a write-behind int64 counter. Its zero value is not usable:
// counters come from Table.Get. It is safe for concurrent use: Add from any
// number of goroutines, Table.Drain, Settle and Restore from one flusher at
// a time.
type Counter struct {
	base     atomic.Int64            // the single cell of an uncontended counter
	stripes  atomic.Pointer[stripes] // non-nil once contention was seen
	inflight atomic.Int64            // drained but neither settled nor restored
	next     atomic.Pointer[Counter] // link on the table's dirty list
	table    *Table                  // owner of the dirty list
	name     string                  // immutable
	dirty    atomic.Bool             // on the dirty list, or about to be
	flags    atomic.Uint32           // pinned, touched; the fields fill one cache line
}

// Counter flags.
const (
	pinned  = 1 << iota // never evicted as idle (see Table.SweepIdle)
	touched             // drained since the last sweep of its shard
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
func (c *Counter) Add(delta int64) {
	if s := c.stripes.Load(); s != nil {
		cell := s.cell()
		if v := cell.Load(); !cell.CompareAndSwap(v, v+delta) {
			c.contended(s, cell, delta)
		}
	} else if v := c.base.Load(); !c.base.CompareAndSwap(v, v+delta) {
		c.contended(nil, nil, delta)
	}
	if !c.dirty.Load() {
		c.markDirty()
	}
}

// contended is Add's slow path, taken when a CAS failed because another
// core wrote the same cell: it grows the stripes (up to the table's cap)
// and lands delta with an unconditional atomic add.
//
//go:noinline
func (c *Counter) contended(s *stripes, cell *cell, delta int64) {
	max := c.table.maxStripes
	switch {
	case s == nil:
		c.stripes.CompareAndSwap(nil, newStripes(min(2, max)))
		c.base.Add(delta)
		return
	case len(s.cells) < max:
		// Adds that loaded s before the swap still land in s, so the grown
		// array keeps s on its chain for sum and drain to read.
		grown := newStripes(len(s.cells) * 2)
		grown.prev = s
		c.stripes.CompareAndSwap(s, grown)
	default:
		s.salt.Store(rand.Uint64()) // full size: reshuffle instead
	}
	cell.Add(delta)
}

// markDirty puts c on its table's dirty list once per drain.
//
//go:noinline
func (c *Counter) markDirty() {
	if c.dirty.CompareAndSwap(false, true) {
		c.table.push(c)
	}
}

// Load returns the delta added since the last drain. Adds running
// concurrently may or may not be included.
func (c *Counter) Load() int64 {
	n := c.base.Load()
	if s := c.stripes.Load(); s != nil {
		n += s.sum()
	}
	return n
}

// Unflushed returns Load plus the in-flight amount: everything added that
// has not been Settled. It is exact only while no drain, Settle or Restore
// of c runs concurrently; callers that need that serialize them.
func (c *Counter) Unflushed() int64 { return c.Load() + c.inflight.Load() }

// InFlight returns the amount drained but not yet settled or restored.
func (c *Counter) InFlight() int64 { return c.inflight.Load() }

// drain moves the delta accumulated since the last drain into the in-flight
// amount and returns it. The dirty mark is cleared first, so an Add racing
// with drain either lands in this drain or re-marks c for the next one.
// Only Table.Drain calls it, after taking c off the dirty list: draining a
// counter still on the list could let an Add push it a second time.
func (c *Counter) drain() int64 {
	if c.flags.Load()&touched == 0 {
		c.flags.Or(touched)
	}
	c.dirty.Store(false)
	n := c.base.Swap(0)
	if s := c.stripes.Load(); s != nil {
		n += s.drain()
	}
	c.inflight.Add(n)
	return n
}

// Discard drops the delta added since the last drain (not the amount in
// flight) and returns it: for a delta Redis keeps refusing that its owner
// gives up on.
func (c *Counter) Discard() int64 {
	n := c.base.Swap(0)
	if s := c.stripes.Load(); s != nil {
		n += s.drain()
	}
	return n
}

// Settle records that n of the in-flight amount was written remotely.
func (c *Counter) Settle(n int64) { c.inflight.Add(-n) }

// Restore gives n of the in-flight amount back to the counter, to be
// drained again; it marks c dirty.
func (c *Counter) Restore(n int64) {
	c.inflight.Add(-n)
	c.base.Add(n)
	c.markDirty()
}

// Stripes returns how many stripes c has: 1 until contention was seen.
func (c *Counter) Stripes() int {
	if s := c.stripes.Load(); s != nil {
		return len(s.cells)
	}
	return 1
}
