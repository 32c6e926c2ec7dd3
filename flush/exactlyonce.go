package flush

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxBatchesPerGroup bounds the batches of one group in doubt at once, so
// duplicates can always find their per-key errors (see failureWindow). A
// round sends at most this many per group; Flush runs rounds until all is
// sent.
const maxBatchesPerGroup = failureWindow

// roundExactlyOnce resends pending batches, then cuts fresh deltas into
// new batches for the groups with nothing pending and sends them. It
// reports more when it gave deltas back for lack of room, not failure.
func (f *Flusher) roundExactlyOnce(ctx context.Context, force bool) (more bool, err error) {
	var keyErrs []error
	var cause error
	if len(f.pending) > 0 {
		var errs []error
		f.pending, errs, cause = f.send(ctx, f.pending)
		keyErrs = append(keyErrs, errs...)
		// With one group, anything still pending blocks everything: leave
		// the fresh deltas coalescing in the Source.
		if len(f.pending) > 0 && !f.cluster {
			return false, f.pendingError(cause, keyErrs)
		}
	}
	blocked := make(map[int]bool, len(f.pending))
	for _, b := range f.pending {
		blocked[b.group] = true
	}
	fresh, since := f.drain()
	fresh, held := f.hold(fresh, since, force)
	keyErrs = append(keyErrs, held...)
	batches, full, waiting := f.cut(fresh, since, blocked)
	f.restore(full, since)
	f.restore(waiting, since)
	if len(batches) > 0 {
		pending, errs, err := f.send(ctx, batches)
		f.pending = append(f.pending, pending...)
		keyErrs = append(keyErrs, errs...)
		if cause == nil {
			cause = err
		}
	}
	if len(f.pending) > 0 || cause != nil {
		return false, f.pendingError(cause, keyErrs)
	}
	return len(full) > 0, errors.Join(keyErrs...)
}

// pendingError reports the batches left in doubt and returns the error of
// the round.
func (f *Flusher) pendingError(cause error, keyErrs []error) error {
	if cause == nil {
		cause = errors.New("outcome not yet known")
	}
	err := &PendingError{Batches: len(f.pending), Err: cause}
	for _, b := range f.pending {
		err.Keys += len(b.deltas)
		err.Delta += sum(b.deltas)
	}
	f.report(err)
	return errors.Join(append([]error{err}, keyErrs...)...)
}

// cut groups fresh deltas by slot into new batches of at most BatchKeys
// keys. It returns the batches, the deltas beyond maxBatchesPerGroup
// batches of a group (full), and those of blocked groups (waiting).
func (f *Flusher) cut(fresh []Delta, since time.Time, blocked map[int]bool) (batches []*batch, full, waiting []Delta) {
	groups := map[int][]Delta{0: fresh}
	if f.cluster {
		groups = make(map[int][]Delta)
		for _, d := range fresh {
			g := Slot(d.Key)
			groups[g] = append(groups[g], d)
		}
	}
	for g, ds := range groups {
		if blocked[g] {
			waiting = append(waiting, ds...)
			continue
		}
		for n := 0; len(ds) > 0; n++ {
			if n == maxBatchesPerGroup {
				full = append(full, ds...)
				break
			}
			k := min(len(ds), f.opts.BatchKeys)
			// Each batch owns its deltas: the drain buffer is reused.
			own := append([]Delta(nil), ds[:k]...)
			ds = ds[k:]
			batches = append(batches, &batch{
				group:  g,
				record: f.record(g),
				seq:    f.nextSeq[g],
				deltas: own,
				since:  f.age(own, since),
			})
			f.nextSeq[g]++
		}
	}
	return batches, full, waiting
}

// record is the writer record key guarding group g.
func (f *Flusher) record(g int) string {
	if f.cluster {
		return f.opts.RecordPrefix + "{" + slotTags()[g] + "}:" + f.id
	}
	return f.opts.RecordPrefix + f.id
}

// send sends batches in order, in pipelines of at most PipelineKeys keys,
// and settles what Redis confirms. It returns the batches still in doubt
// (in order), the key errors met, and the first failure. After a pipeline
// fails outright it stops: batches never sent are dropped and their deltas
// restored, with their sequence numbers given back.
func (f *Flusher) send(ctx context.Context, batches []*batch) (pending []*batch, keyErrs []error, cause error) {
	for len(batches) > 0 {
		n, keys := 0, 0
		for n < len(batches) && (n == 0 || keys+len(batches[n].deltas) <= f.pipelineKeys()) {
			keys += len(batches[n].deltas)
			n++
		}
		chunk := batches[:n]
		batches = batches[n:]
		f.rebased = false
		p, errs, err := f.sendPipeline(ctx, chunk)
		// NOSCRIPT (Redis restarted, failed over, or SCRIPT FLUSH), or a
		// regressed record now accepted: send what was refused again, as
		// EVAL, before anything after it. A failover can bring both.
		for range 2 {
			if !(f.noScript || f.rebased) || len(p) == 0 {
				break
			}
			f.rebased = false
			var more []error
			p, more, err = f.sendPipeline(ctx, p)
			errs = append(errs, more...)
		}
		pending = append(pending, p...)
		keyErrs = append(keyErrs, errs...)
		f.sized(len(p) == len(chunk) && isTimeout(err))
		if err != nil {
			if cause == nil {
				cause = err
			}
			if len(p) == len(chunk) {
				// Nothing got through: keep the rest for later.
				pending = append(pending, f.unsend(batches)...)
				break
			}
		}
	}
	return pending, keyErrs, cause
}

// unsend drops batches that were never sent, restoring their deltas and
// rewinding each group's sequence to the first of them, so that sequence
// numbers stay contiguous. Batches sent before are kept and returned.
func (f *Flusher) unsend(batches []*batch) (keep []*batch) {
	for _, b := range batches {
		if b.sent > 0 {
			keep = append(keep, b)
			continue
		}
		f.restore(b.deltas, b.since)
		f.nextSeq[b.group] = min(f.nextSeq[b.group], b.seq)
	}
	return keep
}

// sendPipeline sends chunk and, when replicas are wanted, a WAIT after it
// on the same connection (one pipeline per master on a Cluster, since a
// WAIT counts the writes of its own connection). Its error is the first
// failure in the chunk: a batch refused only because an earlier one is in
// doubt says nothing the earlier one's error did not.
func (f *Flusher) sendPipeline(ctx context.Context, chunk []*batch) (pending []*batch, keyErrs []error, err error) {
	want := f.replicas.Want(ctx, f.rdb)
	if want == 0 || !f.cluster {
		return f.sendOn(ctx, f.rdb.Pipeline(), chunk, want)
	}
	cc := f.rdb.(*redis.ClusterClient)
	defer func() {
		if err != nil {
			// The per-node pipelines bypass the ClusterClient's handling
			// of MOVED: after a failover its slot map is stale until
			// reloaded.
			cc.ReloadState(ctx)
		}
	}()
	byNode := make(map[*redis.Client][]*batch)
	var nodes []*redis.Client
	for _, b := range chunk {
		node, nerr := cc.MasterForKey(ctx, b.record)
		if nerr != nil {
			return chunk, nil, fmt.Errorf("find master of %s: %w", b.record, nerr)
		}
		if byNode[node] == nil {
			nodes = append(nodes, node)
		}
		byNode[node] = append(byNode[node], b)
	}
	for _, node := range nodes {
		p, errs, nerr := f.sendOn(ctx, node.Pipeline(), byNode[node], want)
		pending = append(pending, p...)
		keyErrs = append(keyErrs, errs...)
		if err == nil {
			err = nerr
		}
	}
	return pending, keyErrs, err
}

// sendOn sends chunk through pipe, followed by WAIT want when want > 0.
// A batch applied (or found applied) while fewer replicas than wanted
// acknowledged stays pending: it is resent, recognised as a duplicate,
// and confirmed once a WAIT after it succeeds.
func (f *Flusher) sendOn(ctx context.Context, pipe redis.Pipeliner, chunk []*batch, want int) (pending []*batch, keyErrs []error, err error) {
	cmds := make([]*redis.Cmd, len(chunk))
	// EVAL carries the script and caches it in Redis; EVALSHA only names
	// it. Use EVAL until a reply shows the script is cached, and after
	// any NOSCRIPT: no separate SCRIPT LOAD round trip that could fail on
	// its own.
	eval := f.noScript
	f.noScript = false
	var st Stats // this pipeline's contribution
	for i, b := range chunk {
		keys, args := b.keysAndArgs(f.floor[b.group], f.base(b.group), f.opts.KeyTTL)
		if eval {
			cmds[i] = applyScript.Eval(ctx, pipe, keys, args...)
		} else {
			cmds[i] = applyScript.EvalSha(ctx, pipe, keys, args...)
		}
		if b.sent > 0 {
			st.Resent++
		}
		b.sent++
	}
	var wait *redis.Cmd
	if want > 0 {
		wait = pipe.Do(ctx, "wait", want, f.opts.ReplicaTimeout.Milliseconds())
	}
	pipe.Exec(ctx) // errors are read per command below
	defer func() {
		f.stats.update(func(s *Stats) {
			s.RoundTrips++
			s.Commands += uint64(len(chunk))
			if wait != nil {
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
	if wait != nil {
		acked, werr := wait.Int64()
		f.replicas.Saw(int(acked))
		if werr != nil || acked < int64(want) {
			unreplicated = &ReplicaError{Want: want, Acked: int(acked), Err: werr}
		}
	}
	var outOfOrder error
	for i, b := range chunk {
		v, cerr := cmds[i].Result()
		if cerr != nil {
			if isNoScript(cerr) {
				f.noScript = true
			}
			if err == nil {
				err = fmt.Errorf("batch %d (%d keys): %w", b.seq, len(b.deltas), classify(cerr))
			}
			pending = append(pending, b)
			continue
		}
		r, perr := parseScriptReply(v)
		if perr != nil {
			if err == nil {
				err = perr
			}
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
			f.rebased = true
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
			pending = append(pending, b)
			continue
		}
		if r.outcome == outcomeDuplicate {
			st.Duplicates++
		} else {
			delete(f.accepted, b.group) // the record is at b.seq again
		}
		f.floor[b.group] = max(f.floor[b.group], b.seq)
		now := f.opts.Now()
		f.history.add(b, now)
		f.confirmedAt[b.group] = now
		keyErrs = append(keyErrs, f.settle(b, r.failed)...)
	}
	if err == nil {
		err = unreplicated
	}
	if err == nil {
		err = outOfOrder
	}
	return pending, keyErrs, err
}

// lost gives up on a batch whose record vanished while it was in doubt:
// resending it could count it twice. Its deltas leave the Source.
func (f *Flusher) lost(b *batch) error {
	f.src.Settle(b.deltas)
	err := &LostError{Record: b.record, Seq: b.seq, Deltas: make(map[string]int64, len(b.deltas)), Delta: sum(b.deltas)}
	for _, d := range b.deltas {
		err.Deltas[d.Key] += d.N
	}
	f.report(err)
	return err
}

// settle splits a confirmed batch into applied and refused deltas.
func (f *Flusher) settle(b *batch, failed map[int]string) []error {
	if len(failed) == 0 {
		f.confirmed(b.deltas, b.since)
		return nil
	}
	applied := make([]Delta, 0, len(b.deltas))
	var refused []Delta
	var msgs []string
	for i, d := range b.deltas {
		if msg, ok := failed[i]; ok {
			refused = append(refused, d)
			msgs = append(msgs, msg)
		} else {
			applied = append(applied, d)
		}
	}
	f.confirmed(applied, b.since)
	return f.refused(refused, msgs, b.since)
}

// pipelineKeys is the most keys the next pipeline carries: PipelineKeys,
// or less after pipelines timed out as a whole. A client reads a
// pipeline's replies under one deadline, so a pipeline too large for a
// slow server would time out on every resend.
func (f *Flusher) pipelineKeys() int {
	return max(f.opts.PipelineKeys>>f.shrink, f.opts.BatchKeys)
}

// sized adapts pipelineKeys: halved after a pipeline timed out as a
// whole, doubled back after one that did not.
func (f *Flusher) sized(timedOut bool) {
	switch {
	case timedOut && f.pipelineKeys() > f.opts.BatchKeys:
		f.shrink++
	case !timedOut && f.shrink > 0:
		f.shrink--
	}
}

// isTimeout reports a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isNoScript reports a script cache miss: the batch was not applied.
func isNoScript(err error) bool { return errors.Is(classify(err), ErrNoScript) }
