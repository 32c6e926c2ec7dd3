package flush

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/replicas"
)

// exchange is a pipeline to one master: script calls for some of its
// batches, then a WAIT when replicas are wanted, on the same connection,
// since a WAIT counts the writes of its own connection.
type exchange struct {
	pipe    redis.Pipeliner
	batches []*batch
	cmds    []*redis.Cmd
	wait    *redis.Cmd
	want    int
	resent  uint64 // batches sent again after an unknown outcome

	// The calls' arguments, reused by every exchange with the master, so
	// that a pipeline costs no allocation per key (see encode).
	keys keyWriter // the deltas' Redis keys
	regs []int     // per registration, the 1-based index of its delta
	ttls []int     // per delta with a TTL of its own, its 1-based index
	toks []int     // per delta with a token, its 1-based index
	args []any
}

// encode writes the Redis keys (prefix+Key) of the batches' deltas into
// e.keys and the indexes of registrations, TTLs and tokens into e.regs,
// e.ttls and e.toks, and makes room in e.args for all the calls:
// nothing may move once calls point into them.
func (e *exchange) encode(prefix string, batches []*batch) {
	keys, bytes, args := 0, 0, 0
	e.regs, e.ttls, e.toks = e.regs[:0], e.ttls[:0], e.toks[:0]
	for _, b := range batches {
		keys += len(b.deltas)
		args += 13 + 2*len(b.deltas)
		b.nTTL, b.nToken = 0, 0
		for i, d := range b.deltas {
			bytes += len(prefix) + len(d.Key)
			if d.Register != nil {
				e.regs = append(e.regs, i+1)
				args += 4
			}
			if d.TTLMillis != 0 {
				e.ttls = append(e.ttls, i+1)
				b.nTTL++
				args += 2
			}
			if d.Token != "" {
				e.toks = append(e.toks, i+1)
				b.nToken++
				args += 2
			}
		}
	}
	e.keys.reset(keys, bytes)
	for _, b := range batches {
		for _, d := range b.deltas {
			e.keys.add(prefix, d.Key)
		}
	}
	clear(e.args) // the previous calls' pointers, for the collector
	e.args = slices.Grow(e.args[:0], args)
}

// pipeline queues, in n's exchange, the script calls that send batches,
// and a WAIT after them when replicas are wanted.
//
// On a Cluster the pipeline goes to the master itself, not through the
// ClusterClient, whose pipelines follow ASK redirections with ASKING:
// that would let the script reach, on the importing master, keys of any
// slot it imports, even keys the migrating master still holds (see
// applySource). A refusal instead marks the slot map stale.
func (f *Flusher) pipeline(ctx context.Context, n *node, batches []*batch) {
	e := &n.ex
	e.pipe, e.batches, e.cmds, e.wait, e.resent = n.c.Pipeline(), batches, e.cmds[:0], nil, 0
	e.want = f.replicas.Want(ctx, f.rdb)
	if e.want > 0 && f.waiting.CompareAndSwap(false, true) {
		f.log(slog.LevelInfo, "replicas seen; batches now wait for them", "replicas", e.want, "timeout", f.opts.ReplicaTimeout)
	}
	// EVAL carries the script and caches it in Redis; EVALSHA only names
	// it. Use EVAL until a reply shows the script is cached, and after
	// any NOSCRIPT: no separate SCRIPT LOAD round trip that could fail on
	// its own.
	call := &f.script.evalSHA
	if n.noScript {
		call = &f.script.eval
	}
	n.noScript, n.rebased = false, false
	e.encode(f.opts.KeyPrefix, batches)
	keys, regs, ttls, toks := e.keys.wire, e.regs, e.ttls, e.toks
	for _, b := range batches {
		b.floor, b.base, b.n = f.floor[b.group], f.base(b.group), len(b.deltas)
		b.resend = "0"
		if b.doubt {
			b.resend = "1"
			e.resent++
		}
		b.sent++
		// The arguments of applySource, all pointers but for constants
		// and the record.
		start := len(e.args)
		e.args = append(e.args, call[0], call[1], 1, b.record, &b.seq, &b.floor, &b.resend, &f.keyTTLMillis, &b.n, &b.base,
			&b.nTTL, &b.nToken, &f.tokenTTLMillis)
		for i := range b.deltas {
			e.args = append(e.args, &keys[i], &b.deltas[i].N)
		}
		keys = keys[len(b.deltas):]
		for i := range b.deltas {
			if b.deltas[i].TTLMillis != 0 {
				e.args = append(e.args, &ttls[0], &b.deltas[i].TTLMillis)
				ttls = ttls[1:]
			}
		}
		for i := range b.deltas {
			if b.deltas[i].Token != "" {
				e.args = append(e.args, &toks[0], &b.deltas[i].Token)
				toks = toks[1:]
			}
		}
		for i := range b.deltas {
			if r := b.deltas[i].Register; r != nil {
				e.args = append(e.args, &regs[0], &r.Set, &r.Score, &r.Member)
				regs = regs[1:]
			}
		}
		cmd := redis.NewCmd(ctx, e.args[start:len(e.args):len(e.args)]...)
		e.pipe.Process(ctx, cmd) // queued: errors are read per command
		e.cmds = append(e.cmds, cmd)
	}
	if e.want > 0 {
		e.wait = e.pipe.Do(ctx, "wait", e.want, f.opts.ReplicaTimeout.Milliseconds())
	}
}

// replies reads the replies of n's exchange and settles what Redis
// confirmed. A batch applied (or found applied) while fewer replicas than
// wanted acknowledged stays pending: it is resent, recognised as a
// duplicate, and confirmed once a WAIT after it succeeds. The error is the
// first failure in the exchange: a batch refused only because an earlier
// one is in doubt says nothing the earlier one's error did not.
func (f *Flusher) replies(n *node) (pending []*batch, keyErrs []error, err error) {
	e := &n.ex
	st := Stats{Resent: e.resent} // this pipeline's contribution
	defer func() {
		clear(e.cmds) // the commands hold the batches' arguments
		e.pipe, e.wait = nil, nil
		f.stats.update(func(s *Stats) {
			s.RoundTrips++
			s.Commands += uint64(len(e.cmds))
			if e.want > 0 {
				s.Commands++
			}
			s.Resent += st.Resent
			s.Duplicates += st.Duplicates
			s.LostBatches += st.LostBatches
			s.LostDelta += st.LostDelta
			s.Unreplicated += st.Unreplicated
		})
	}()
	var unreplicated error
	if e.wait != nil {
		acked, werr := e.wait.Int64()
		f.replicas.Saw(int(acked))
		if werr != nil || acked < int64(e.want) {
			op := fmt.Sprintf("pipeline of %d batches", len(e.batches))
			unreplicated = replicas.NewError(ErrNotReplicated, op, e.want, int(acked), f.opts.ReplicaTimeout, werr)
		}
	}
	var outOfOrder error
	for i, b := range e.batches {
		v, cerr := e.cmds[i].Result()
		if cerr != nil {
			if isNoScript(cerr) {
				n.noScript = true
			}
			if f.topo != nil {
				f.topo.stale = true // a failover, a moved slot: look again
			}
			if err == nil {
				err = fmt.Errorf("batch %d (%d keys): %w", b.seq, len(b.deltas), classify(cerr))
			}
			// Even a refusal (MOVED, say) leaves the batch in doubt: it may
			// answer a retry of go-redis' whose first try was applied.
			b.doubt = true
			pending = append(pending, b)
			continue
		}
		r, perr := parseScriptReply(v)
		if perr != nil {
			if err == nil {
				err = perr
			}
			b.doubt = true
			pending = append(pending, b)
			continue
		}
		switch r.outcome {
		case outcomeOutOfOrder:
			if outOfOrder == nil {
				outOfOrder = fmt.Errorf("batch %d out of order: an earlier batch is in doubt", b.seq)
			}
			pending = append(pending, b)
			continue
		case outcomeRegressed:
			if rerr := f.regressed(b, r.last); rerr != nil {
				keyErrs = append(keyErrs, rerr)
			}
			n.rebased = true
			pending = append(pending, b)
			continue
		case outcomeLost:
			f.floor[b.group] = max(f.floor[b.group], b.seq)
			st.LostBatches++
			st.LostDelta += sum(b.deltas)
			keyErrs = append(keyErrs, f.lost(b))
			continue
		}
		if unreplicated != nil {
			// Applied on this master, but a failover could still lose it.
			st.Unreplicated++
			b.doubt = true
			pending = append(pending, b)
			continue
		}
		if r.outcome == outcomeDuplicate {
			st.Duplicates++
		} else {
			delete(f.accepted, b.group) // the record is at b.seq again
		}
		f.floor[b.group] = max(f.floor[b.group], b.seq)
		now := time.Now()
		f.history.add(b, now)
		f.confirmedAt[b.group] = now
		keyErrs = append(keyErrs, f.settle(b, r)...)
	}
	if err == nil {
		err = unreplicated
	}
	if err == nil {
		err = outOfOrder
	}
	return pending, keyErrs, err
}

// keyArg is a Redis key held in a batch's key buffer. go-redis writes an
// encoding.BinaryMarshaler argument as the bytes it returns, and a
// pointer in an interface costs no allocation: passing *keyArg is how a
// batch sends KeyPrefix+Key without building a string per key.
type keyArg struct{ b []byte }

// MarshalBinary returns the key's bytes.
func (k *keyArg) MarshalBinary() ([]byte, error) { return k.b, nil }

// String returns the key. A ClusterClient routes a command by its key
// argument as fmt.Sprint prints it: without String, a plain INCRBY of an
// AtLeastOnce flush would hash "&{[...]}" and go to a master that
// answers MOVED. (A batch names no key go-redis routes by: its pipeline
// goes to the master itself.)
func (k *keyArg) String() string { return string(k.b) }

// keyWriter writes Redis keys (a prefix and a Delta's Key) back to back
// into one buffer and keeps a keyArg for each: the keys of a pipeline, in
// memory reused by the next.
type keyWriter struct {
	buf  []byte
	wire []keyArg
}

// reset empties w and makes room for keys keys of bytes bytes in all:
// nothing may move once a keyArg points into the buffer.
func (w *keyWriter) reset(keys, bytes int) {
	w.buf = slices.Grow(w.buf[:0], bytes)
	w.wire = slices.Grow(w.wire[:0], keys)
}

// add writes prefix+key.
func (w *keyWriter) add(prefix, key string) {
	start := len(w.buf)
	w.buf = append(append(w.buf, prefix...), key...)
	w.wire = append(w.wire, keyArg{w.buf[start:len(w.buf):len(w.buf)]})
}
