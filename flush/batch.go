package flush

import (
	"strconv"
	"time"
)

// Delta is one key's change. Ref is carried back to the Source untouched,
// so it can find its own bookkeeping (a counter handle) without a lookup.
type Delta struct {
	Key string
	N   int64
	Ref any
	// Register, when not nil, is added to a sorted set in the same atomic
	// step that applies the delta, so that whatever indexes the key (the
	// windows a rollup must finalize) cannot miss it. On Redis Cluster its
	// Set must hash to Key's slot.
	Register *Registration
}

// Registration is a sorted-set member added with ZADD NX (an existing
// member keeps its score), so sending it again is harmless.
type Registration struct {
	Set    string
	Member string
	Score  float64
}

// Source is where a Flusher takes deltas from and gives them back to.
// Its methods are called from one goroutine at a time.
type Source interface {
	// Drain appends the pending non-zero deltas to dst, one per key, and
	// returns it. Drained deltas are in flight until Settled or Restored.
	Drain(dst []Delta) []Delta
	// Settle is given deltas Redis has applied, and deltas that are in
	// doubt for good (see ErrRecordLost): in flight no more.
	Settle(ds []Delta)
	// Restore is given deltas that were not applied and never will be as
	// sent (never sent, or refused for their key), to be drained again.
	Restore(ds []Delta)
}

// batch is one script call: a slot group's deltas under one sequence
// number. Once sent, its seq and deltas never change until Redis confirms
// it, because a resend must be recognisable as the same batch.
type batch struct {
	group  int    // cluster slot, or 0 on a single node
	record string // writer record key
	seq    uint64
	deltas []Delta
	since  time.Time // its deltas are no older than this
	sent   int       // how many times it was sent
}

func (b *batch) keysAndArgs(floor, base uint64, keyTTL time.Duration) ([]string, []any) {
	keys := make([]string, 0, len(b.deltas)+1)
	args := make([]any, 0, len(b.deltas)+6)
	resend := "0"
	if b.sent > 0 {
		resend = "1"
	}
	keys = append(keys, b.record)
	args = append(args, strconv.FormatUint(b.seq, 10), strconv.FormatUint(floor, 10),
		resend, keyTTL.Milliseconds(), len(b.deltas), strconv.FormatUint(base, 10))
	for _, d := range b.deltas {
		keys = append(keys, d.Key)
		args = append(args, d.N)
	}
	for _, d := range b.deltas {
		if r := d.Register; r != nil {
			keys = append(keys, r.Set)
			args = append(args, len(keys), r.Score, r.Member)
		}
	}
	return keys, args
}

func sum(ds []Delta) (n int64) {
	for _, d := range ds {
		n += d.N
	}
	return n
}
