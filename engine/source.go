package engine

import (
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/shard"
)

// source lets the flusher drain the engine's table; each method holds the
// engine's lock so that Value sees every delta exactly once.
type source struct{ e *Engine }

var _ flush.Source = source{}

func (s source) Drain(dst []flush.Delta) []flush.Delta {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	e.epoch++
	e.table.Drain(func(c *shard.Counter, n int64) {
		dst = append(dst, flush.Delta{Key: e.Key(c.Name()), N: n, Ref: c})
	})
	return dst
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
	}
}

func (s source) Restore(ds []flush.Delta) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	for _, d := range ds {
		d.Ref.(*shard.Counter).Restore(d.N)
	}
}
