package engine

import (
	"time"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/shard"
)

// source lets the flusher drain the engine's table; each method holds the
// engine's lock so that Value sees every delta exactly once.
type source struct{ e *Engine }

var _ flush.Source = source{}

// Drain drains the table, attaching the registration of counters that
// have one (CounterOptions.Register), and sweeps a share of the table for idle counters.
func (s source) Drain(dst []flush.Delta) []flush.Delta {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	e.epoch++
	e.table.Drain(func(c *shard.Counter, n int64) {
		d := flush.Delta{Key: e.Key(c.Name()), N: n, Ref: c}
		if sp := e.special[c]; sp != nil {
			d.Register = sp.opts.Register
		}
		dst = append(dst, d)
	})
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
	now := e.opts.Now()
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
		c := d.Ref.(*shard.Counter)
		c.Settle(d.N)
		if r := e.cache[c.Name()]; r != nil {
			r.value += d.N // our INCRBY is in Redis now; the cache stays exact
		}
		if sp := e.special[c]; sp != nil && sp.retired && c.Unflushed() == 0 {
			delete(e.special, c)
		}
	}
}

func (s source) Restore(ds []flush.Delta) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	for _, d := range ds {
		d.Ref.(*shard.Counter).Restore(d.N)
	}
}
