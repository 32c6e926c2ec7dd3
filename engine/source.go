package engine

import (
	"time"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/shard"
)

// source lets the flusher take deltas from the engine's table, and settle
// or restore them, which only the table's owner can do: a delta's Ref is
// its *shard.Counter, which offers no way to settle. Value must see each
// delta exactly once (in the counter, in flight, or in the Redis value it
// read), so every move of a delta happens under the engine's lock, and
// bumps the epoch that tells a read its Redis value may be out of date.
type source struct{ e *Engine }

var _ flush.Source = source{}

// takeChunk is how many counters Take moves in flight per hold of the
// engine's lock: readers wait for one chunk, not for a walk of the whole
// dirty list.
const takeChunk = 256

// yieldLocked lets go of e.mu for a moment and takes it back, bumping the
// epoch: a walk that moves deltas in flight calls it every takeChunk of
// them, so that readers wait for one chunk, and a read that overlapped
// the gap does not cache a Redis value its deltas may since have left.
func (e *Engine) yieldLocked() {
	e.mu.Unlock()
	e.mu.Lock()
	e.epoch++
}

// Take takes the table's deltas and the token adds (see AddOnce),
// attaching the registration of counters that have one
// (CounterOptions.Register), and sweeps a share of the table for idle
// counters. A delta's Key is the counter's name: the flusher prefixes the
// namespace (flush.Options.KeyPrefix), so no key is built per flush.
func (s source) Take(dst []flush.Delta) []flush.Delta {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	e.epoch++
	n := 0
	// The table moves each counter's delta in flight before it calls
	// back, so the lock is held across that move; it is let go between
	// chunks (yieldLocked).
	e.table.Take(func(c *shard.Counter, delta int64) {
		dst = append(dst, flush.Delta{Key: c.Name(), N: delta, Ref: c})
		if len(e.special) > 0 {
			if sp := e.special[c]; sp != nil {
				d := &dst[len(dst)-1]
				d.Register, d.TTLMillis = sp.opts.Register, sp.ttlMillis
			}
		}
		if n++; n%takeChunk == 0 {
			e.yieldLocked()
		}
	})
	dst = e.drainOnceLocked(dst)
	e.sweepIdleLocked()
	return dst
}

// sweepIdleLocked visits one of the table's 64 shards per IdleEvict/64
// elapsed, so that a counter idle for IdleEvict leaves memory within
// 2×IdleEvict.
func (e *Engine) sweepIdleLocked() {
	if e.opts.IdleEvict < 0 {
		return
	}
	now := time.Now()
	step := max(e.opts.IdleEvict/64, 1)
	n := int(now.Sub(e.lastSweep) / step)
	if n == 0 {
		return
	}
	e.lastSweep = e.lastSweep.Add(time.Duration(n) * step)
	if n := e.table.SweepIdle(n); n > 0 {
		e.evicted.Add(uint64(n))
	}
}

func (s source) Settle(ds []flush.Delta) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	e.epoch++
	for _, d := range ds {
		if d.Token != "" {
			e.settleOnceLocked(d)
			continue
		}
		c := d.Ref.(*shard.Counter)
		e.table.Settle(c, d.N)
		e.settleCachedLocked(c.Name(), d)
		if len(e.special) > 0 {
			if sp := e.special[c]; sp != nil && sp.retired && !e.holdsLocked(c) {
				delete(e.special, c)
			}
		}
	}
}

// settleCachedLocked keeps the cached Redis value of the counter named
// name exact as d leaves flight: d's INCRBY is in Redis now. Unless d was
// lost in doubt: whether Redis has it is unknown, so the cached value is
// forgotten, to be read again. e.mu is held.
func (e *Engine) settleCachedLocked(name string, d flush.Delta) {
	r := e.cache[name]
	switch {
	case r == nil:
	case d.Lost:
		delete(e.cache, name)
	default:
		r.value += d.N
	}
}

func (s source) Restore(ds []flush.Delta) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	for _, d := range ds {
		if d.Token != "" {
			s.e.restoreOnce(d)
			continue
		}
		s.e.table.Restore(d.Ref.(*shard.Counter), d.N)
	}
}
