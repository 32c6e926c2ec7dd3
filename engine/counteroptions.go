package engine

import (
	"time"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/shard"
)

// CounterOptions configure one counter beyond the engine's Options. The
// zero value gives a counter like any other.
type CounterOptions struct {
	// Register, when not nil, is added to a sorted set by every flush
	// that writes a delta of the counter, with ZADD NX in the same atomic
	// step as the delta (with AtLeastOnce delivery, just before it; see
	// flush.Delta.Register): whatever indexes
	// counters by that set cannot miss one that holds a count, whatever
	// the outages. Package window registers its windows this way. On
	// Redis Cluster, Register.Set must hash to the counter key's slot.
	Register *flush.Registration
	// TTL, when positive, is the counter's own expiry in Redis, set (and
	// so refreshed) by every flush that writes it, in place of
	// Options.KeyTTL: a per-day counter can expire while an all-time one
	// in the same engine does not. Negative: no expiry, whatever KeyTTL
	// says (an expiry the key already has is left alone). Zero: KeyTTL.
	TTL time.Duration
}

// special is what the engine keeps for a counter with CounterOptions.
type special struct {
	opts      CounterOptions
	ttlMillis int64 // flush.Delta.TTLMillis of its deltas
	retired   bool  // out of the table: forget it once all it holds is flushed
}

// CounterWith is Counter for a counter with options of its own; calling
// it again for the same name replaces them. The options stay with the
// counter until Forget, and beyond it until its last delta is in Redis.
func (e *Engine) CounterWith(name string, opts CounterOptions) (*Counter, error) {
	sp := &special{opts: opts}
	switch {
	case opts.TTL > 0:
		sp.ttlMillis = max(opts.TTL.Milliseconds(), 1)
	case opts.TTL < 0:
		sp.ttlMillis = -1
	}
	c, err := e.Counter(name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.special[c.c] = sp
	return c, nil
}

// retireLocked marks c's options for deletion once c, leaving the table,
// has nothing left to flush. e.mu must be held.
func (e *Engine) retireLocked(c *shard.Counter) {
	sp := e.special[c]
	switch {
	case sp == nil:
	case !e.holdsLocked(c):
		delete(e.special, c)
	default:
		sp.retired = true
	}
}

// holdsLocked reports whether c has anything not settled: a delta, or
// token adds (which carry its options too). e.mu must be held.
func (e *Engine) holdsLocked(c *shard.Counter) bool {
	return c.Unflushed() != 0 || e.once.sums(c.Name()).adds > 0
}
