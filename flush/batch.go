package flush

import "time"

// Delta is one key's change. Ref is the Source's own: the Flusher carries
// it back to the Source untouched, so the Source finds its bookkeeping (a
// counter handle) without a lookup. A Delta goes to no one but its
// Source: errors and Stats report keys and amounts, never a Delta or its
// Ref.
type Delta struct {
	// Key is the key in Redis after Options.KeyPrefix.
	Key string
	N   int64
	Ref any
	// TTLMillis, when not 0, replaces Options.KeyTTL for this key: the
	// expiry in ms that each write of it sets, or, when negative, none.
	TTLMillis int64
	// Register, when not nil, is added to a sorted set in the same atomic
	// step that applies the delta (in AtLeastOnce mode, in a round trip
	// before the delta's INCRBY), so that whatever indexes the key (the
	// windows a rollup must finalize) cannot miss it. A delta whose
	// registration Redis refuses is refused with it (a KeyError naming the
	// set), not applied unregistered. Set is a whole Redis key (KeyPrefix
	// does not apply); on Redis Cluster it must hash to the slot of the
	// delta's key.
	Register *Registration
	// Token, when not empty, makes the delta a retry-safe add: the script
	// applies it only if it creates the key Token (SET NX, expiring after
	// Options.TokenTTL), in the same atomic step, so that an add carried
	// again under a token Redis still holds (the same request retried in
	// another process, say) is not applied twice. Token is a whole Redis
	// key (KeyPrefix does not apply); on Redis Cluster it must hash to the
	// slot of the delta's key. Only ExactlyOnce mode checks tokens: a
	// Flusher in AtLeastOnce mode panics on a delta with one.
	Token string
	// TokenSeen is set by the Flusher on a delta with a Token that it
	// gives to Settle because Redis held the token already: the delta was
	// not applied, and never will be.
	TokenSeen bool
	// Lost is set by the Flusher on a delta that it gives to Settle
	// because its batch is in doubt for good (see ErrRecordLost): it may
	// or may not have been applied, and will not be sent again. So a
	// Source must not take it as applied, nor its Token as written: a
	// retry under that Token is the only way to recover the delta if it
	// was not applied, and Redis' token key decides whether it counts.
	Lost bool
}

// Registration is a sorted-set member added with ZADD NX (an existing
// member keeps its score), so sending it again is harmless.
type Registration struct {
	Set    string
	Member string
	Score  float64
}

// Source is where a Flusher takes deltas from and gives them back to.
// Its methods are called from one goroutine at a time, and none may keep
// the slice it is given: the Flusher reuses it.
type Source interface {
	// Take appends the pending non-zero deltas to dst, one per key (and,
	// next to it, one per Token: see Delta.Token), and returns it. Taken
	// deltas are in flight until Settled or Restored.
	Take(dst []Delta) []Delta
	// Settle is given deltas Redis has applied, deltas whose Token Redis
	// held already (TokenSeen: not applied), and deltas that are in doubt
	// for good (Lost; see ErrRecordLost): in flight no more.
	Settle(ds []Delta)
	// Restore is given deltas that were not applied and never will be as
	// sent (never sent, refused for their key, or refused by a master that
	// no longer serves their key), to be taken again.
	Restore(ds []Delta)
}

// batch is one script call: a group's deltas under one sequence number.
// Once sent, its seq and deltas never change until Redis confirms it,
// because a resend must be recognisable as the same batch.
//
// A Flusher recycles its batches, so that a flush in steady state
// allocates nothing per key (see Flusher.recycle).
type batch struct {
	group  int    // the slot of its writer record on a Cluster, or 0
	record string // writer record key
	seq    uint64
	deltas []Delta
	since  time.Time // its deltas are no older than this
	sent   int       // how many times it was sent
	keep   bool      // still pending after a send (see Flusher.recycle)
	// doubt says a send got no answer telling whether Redis applied the
	// batch (a lost reply, an error, a write not yet replicated), so a
	// resend must say so to the script. An answer that it was not applied
	// (out of order, a regressed record) leaves doubt as it was: a batch
	// refused so, and never in doubt, is sent again as new.
	doubt bool

	// Header arguments of the batch's script call as last sent (see
	// Flusher.pipeline): the call passes pointers to them, which go-redis
	// writes without boxing anything.
	floor, base uint64
	resend      string
	n, nTTL     int
	nToken      int
}

// newBatch returns an empty batch, recycled if one is free.
func (f *Flusher) newBatch() *batch {
	if n := len(f.free); n > 0 {
		b := f.free[n-1]
		f.free = f.free[:n-1]
		return b
	}
	return new(batch)
}

// recycle frees the batches of sent that are not in pending (pending is
// a subset of sent): those Redis applied or refused, that were lost or
// never sent. The Source has had their deltas back by then and nothing
// refers to them, so newBatch can reuse them, buffers and all. (Their
// stale contents, like the take buffer's, keep up to one flush's
// counters from the collector until overwritten.)
func (f *Flusher) recycle(sent, pending []*batch) {
	for _, b := range pending {
		b.keep = true
	}
	for _, b := range sent {
		if b.keep {
			b.keep = false
			continue
		}
		*b = batch{deltas: b.deltas[:0]}
		f.free = append(f.free, b)
	}
}

func sum(ds []Delta) (n int64) {
	for _, d := range ds {
		n += d.N
	}
	return n
}
