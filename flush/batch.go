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
}

// Source is where a Flusher takes deltas from and gives them back to.
// Its methods are called from one goroutine at a time.
type Source interface {
	// Drain appends the pending non-zero deltas to dst, one per key, and
	// returns it. Drained deltas are in flight until Settled or Restored.
	Drain(dst []Delta) []Delta
	// Settle is given deltas Redis has applied.
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
	since  time.Time // drain before the one that produced it: its deltas are no older
	sent   int       // how many times it was sent
}

func (b *batch) keysAndArgs(floor uint64, recordTTL, keyTTL time.Duration) ([]string, []any) {
	keys := make([]string, 0, len(b.deltas)+1)
	args := make([]any, 0, len(b.deltas)+4)
	keys = append(keys, b.record)
	args = append(args, strconv.FormatUint(b.seq, 10), strconv.FormatUint(floor, 10),
		recordTTL.Milliseconds(), keyTTL.Milliseconds())
	for _, d := range b.deltas {
		keys = append(keys, d.Key)
		args = append(args, d.N)
	}
	return keys, args
}

func sum(ds []Delta) (n int64) {
	for _, d := range ds {
		n += d.N
	}
	return n
}
