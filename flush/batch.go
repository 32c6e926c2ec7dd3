package flush

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Delta is one key's change. Ref is carried back to the Source untouched,
// so it can find its own bookkeeping (a counter handle) without a lookup.
type Delta struct {
	// Key is the key in Redis after Options.KeyPrefix.
	Key string
	N   int64
	Ref any
	// Register, when not nil, is added to a sorted set in the same atomic
	// step that applies the delta, so that whatever indexes the key (the
	// windows a rollup must finalize) cannot miss it. Set is a whole Redis
	// key (KeyPrefix does not apply); on Redis Cluster it must hash to the
	// slot of the delta's key.
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
// Its methods are called from one goroutine at a time, and none may keep
// the slice it is given: the Flusher reuses it.
type Source interface {
	// Drain appends the pending non-zero deltas to dst, one per key, and
	// returns it. Drained deltas are in flight until Settled or Restored.
	Drain(dst []Delta) []Delta
	// Settle is given deltas Redis has applied, and deltas that are in
	// doubt for good (see ErrRecordLost): in flight no more.
	Settle(ds []Delta)
	// Restore is given deltas that were not applied and never will be as
	// sent (never sent, refused for their key, or refused by a master that
	// no longer serves their key), to be drained again.
	Restore(ds []Delta)
}

// batch is one script call: a group's deltas under one sequence number.
// Once sent, its seq and deltas never change until Redis confirms it,
// because a resend must be recognisable as the same batch.
//
// A Flusher recycles its batches, with their buffers, so that a flush in
// steady state allocates nothing per key (see Flusher.newBatch).
type batch struct {
	group  int    // the slot of its writer record on a Cluster, or 0
	record string // writer record key
	seq    uint64
	deltas []Delta
	since  time.Time // its deltas are no older than this
	sent   int       // how many times it was sent
	keep   bool      // still in doubt after a send (see Flusher.recycle)

	// The script call's arguments (see applySource), built once by
	// prepare. They are pointers into the batch, which go-redis writes
	// without boxing anything; a send only updates what they point to.
	args         []any
	keys         []byte   // the deltas' Redis keys, back to back
	wire         []keyArg // the deltas' Redis keys, into keys
	regs         []int    // the 1-based index of each delta with a Register
	floor, base  uint64
	resend       string
	n            int
	keyTTLMillis int64
	prepared     bool
}

// keyArg is a Redis key held in a batch's key buffer. go-redis writes an
// encoding.BinaryMarshaler argument as the bytes it returns, and a
// pointer in an interface costs no allocation: passing *keyArg is how a
// batch sends KeyPrefix+Key without building a string per key.
type keyArg struct{ b []byte }

// MarshalBinary returns the key's bytes.
func (k *keyArg) MarshalBinary() ([]byte, error) { return k.b, nil }

// wireKeys writes the Redis keys of ds (prefix+Key) back to back into
// buf, and returns it with one keyArg per delta into it, in wire: both
// reuse the memory they are given.
func wireKeys(buf []byte, wire []keyArg, prefix string, ds []Delta) ([]byte, []keyArg) {
	buf = buf[:0]
	for _, d := range ds {
		buf = append(buf, prefix...)
		buf = append(buf, d.Key...)
	}
	if cap(wire) < len(ds) {
		wire = make([]keyArg, len(ds))
	}
	wire = wire[:len(ds)]
	off := 0
	for i, d := range ds {
		end := off + len(prefix) + len(d.Key)
		wire[i].b = buf[off:end:end]
		off = end
	}
	return buf, wire
}

// Header arguments of applySource, as indexes into batch.args.
const (
	argCommand = 0 // EVAL or EVALSHA
	argScript  = 1 // the script or its SHA1
	argHeader  = 4 // seq, floor, resend, key TTL, n, base
	argDeltas  = argHeader + 6
)

// prepare builds the batch's arguments: the Redis key of every delta
// (prefix+Key) in one buffer, and the pointers go-redis writes.
func (b *batch) prepare(prefix string, keyTTL time.Duration) {
	b.keys, b.wire = wireKeys(b.keys, b.wire, prefix, b.deltas)
	b.n, b.keyTTLMillis = len(b.deltas), keyTTL.Milliseconds()
	a := append(b.args[:0], nil, nil, 1, b.record, &b.seq, &b.floor, &b.resend, &b.keyTTLMillis, &b.n, &b.base)
	b.regs = b.regs[:0]
	for i := range b.deltas {
		a = append(a, &b.wire[i], &b.deltas[i].N)
		if b.deltas[i].Register != nil {
			b.regs = append(b.regs, i+1)
		}
	}
	for j, i := range b.regs {
		r := b.deltas[i-1].Register
		a = append(a, &b.regs[j], &r.Set, &r.Score, &r.Member)
	}
	b.args = a
	b.prepared = true
}

// command returns the script call that sends the batch now, on top of
// floor and base: EVAL when eval, EVALSHA otherwise.
func (b *batch) command(ctx context.Context, s *luaScript, eval bool, floor, base uint64) *redis.Cmd {
	b.floor, b.base = floor, base
	b.resend = "0"
	if b.sent > 0 {
		b.resend = "1"
	}
	call := &s.evalSHA
	if eval {
		call = &s.eval
	}
	b.args[argCommand], b.args[argScript] = call[0], call[1]
	return redis.NewCmd(ctx, b.args...)
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
// stale contents, like the drain buffer's, keep up to one flush's
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
		*b = batch{deltas: b.deltas[:0], args: b.args[:0], keys: b.keys[:0], wire: b.wire[:0], regs: b.regs[:0]}
		f.free = append(f.free, b)
	}
}

func sum(ds []Delta) (n int64) {
	for _, d := range ds {
		n += d.N
	}
	return n
}
