package flush

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// maxBatchesPerGroup bounds the batches of one group in doubt at once, so
// duplicates can always find their per-key errors (see failureWindow). A
// round sends at most this many per group; Flush runs rounds until all is
// sent.
const maxBatchesPerGroup = failureWindow

// roundExactlyOnce resends pending batches, then cuts fresh deltas into
// new batches for the groups with nothing pending and sends them. It
// reports more when it gave deltas back for lack of room, or to send them
// to the master that serves them now, not for failure.
func (f *Flusher) roundExactlyOnce(ctx context.Context, force bool) (more bool, err error) {
	f.moved = 0
	if f.topo != nil {
		if err := f.topo.refresh(ctx, f.used); err != nil {
			return false, f.pendingError(err, nil)
		}
	}
	var keyErrs []error
	var cause error
	if len(f.pending) > 0 {
		var errs []error
		sent := f.pending
		f.pending, errs, cause = f.send(ctx, sent)
		f.recycle(sent, f.pending)
		keyErrs = append(keyErrs, errs...)
		// With one group, anything still pending blocks everything: leave
		// the fresh deltas coalescing in the Source.
		if len(f.pending) > 0 && f.topo == nil {
			return false, f.pendingError(cause, keyErrs)
		}
	}
	clear(f.blocked)
	for _, b := range f.pending {
		f.blocked[b.group] = true
	}
	fresh, since := f.take()
	fresh, held := f.hold(fresh, since, force)
	keyErrs = append(keyErrs, held...)
	batches, full, waiting := f.cut(fresh, since)
	f.restore(full, since)
	f.restore(waiting, since)
	if len(batches) > 0 {
		pending, errs, err := f.send(ctx, batches)
		f.recycle(batches, pending)
		f.pending = append(f.pending, pending...)
		keyErrs = append(keyErrs, errs...)
		if cause == nil {
			cause = err
		}
	}
	if len(f.pending) > 0 || cause != nil {
		return false, f.pendingError(cause, keyErrs)
	}
	return len(full) > 0 || f.moved > 0, errors.Join(keyErrs...)
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

// cut groups fresh deltas into new batches of at most BatchKeys keys: on
// a Cluster, by the master serving each key, in that master's home group;
// otherwise all in group 0. It returns the batches, the deltas beyond
// maxBatchesPerGroup batches of a group (full), and those of groups with
// batches in doubt (waiting).
func (f *Flusher) cut(fresh []Delta, since time.Time) (batches []*batch, full, waiting []Delta) {
	batches = f.cutBuf[:0]
	if f.topo == nil {
		batches, full, waiting = f.cutGroup(batches, full, waiting, 0, fresh, since)
		f.cutBuf = batches
		return batches, full, waiting
	}
	for _, n := range f.topo.nodes {
		n.fresh = n.fresh[:0]
	}
	for _, d := range fresh {
		n := f.topo.route(f.hasher.slot(d.Key))
		n.fresh = append(n.fresh, d)
	}
	for _, n := range f.topo.nodes {
		batches, full, waiting = f.cutGroup(batches, full, waiting, n.home, n.fresh, since)
	}
	f.cutBuf = batches
	return batches, full, waiting
}

// cutGroup appends group g's batches of ds to batches, or ds to waiting
// when g is blocked.
func (f *Flusher) cutGroup(batches []*batch, full, waiting []Delta, g int, ds []Delta, since time.Time) ([]*batch, []Delta, []Delta) {
	if f.blocked[g] {
		return batches, full, append(waiting, ds...)
	}
	for n := 0; len(ds) > 0; n++ {
		if n == maxBatchesPerGroup {
			full = append(full, ds...)
			break
		}
		k := min(len(ds), f.opts.BatchKeys)
		b := f.newBatch()
		b.group, b.record, b.seq = g, f.record(g), f.nextSeq[g]
		// Each batch owns its deltas: the take buffer is reused.
		b.deltas = append(b.deltas, ds[:k]...)
		b.since = f.age(b.deltas, since)
		ds = ds[k:]
		batches = append(batches, b)
		f.nextSeq[g]++
	}
	return batches, full, waiting
}

// used reports whether group g ever numbered a batch: its record may exist.
func (f *Flusher) used(g int) bool { return f.nextSeq[g] > 1 }

// record is the writer record key guarding group g.
func (f *Flusher) record(g int) string {
	if f.topo != nil {
		return f.opts.RecordPrefix + "{" + slotTags()[g] + "}:" + f.id
	}
	return f.opts.RecordPrefix + f.id
}

// send sends batches, those of each master in order, in pipelines of at
// most PipelineKeys keys, and settles what Redis confirms. Each master has
// one pipeline in flight at a time, and all of them are in flight at once:
// their round trips overlap, and so does the work of their servers. It
// returns the batches still in doubt, the key errors met, and the first
// failure. After a master's pipeline fails outright, the batches never
// sent to it are dropped and their deltas restored, with their sequence
// numbers given back.
func (f *Flusher) send(ctx context.Context, batches []*batch) (pending []*batch, keyErrs []error, cause error) {
	nodes := f.route(batches)
	for {
		var live []*node
		for _, n := range nodes {
			if len(n.cur) == 0 {
				if len(n.out) == 0 {
					continue
				}
				k, keys := 0, 0
				for k < len(n.out) && (k == 0 || keys+len(n.out[k].deltas) <= f.pipelineKeys()) {
					keys += len(n.out[k].deltas)
					k++
				}
				n.cur, n.out, n.chunk, n.retries = n.out[:k], n.out[k:], k, 0
			}
			f.pipeline(ctx, n, n.cur)
			live = append(live, n)
		}
		if len(live) == 0 {
			return pending, keyErrs, cause
		}
		if len(live) == 1 {
			live[0].ex.pipe.Exec(ctx) // errors are read per command
		} else {
			var wg sync.WaitGroup
			for _, n := range live {
				wg.Go(func() { n.ex.pipe.Exec(ctx) })
			}
			wg.Wait()
		}
		for _, n := range live {
			p, errs, err := f.replies(n)
			keyErrs = append(keyErrs, errs...)
			// NOSCRIPT (Redis restarted, failed over, or SCRIPT FLUSH), or a
			// regressed record now accepted: send what was refused again, as
			// EVAL, before anything after it. A failover can bring both.
			if (n.noScript || n.rebased) && len(p) > 0 && n.retries < 2 {
				n.cur = p
				n.retries++
				continue
			}
			n.cur = nil
			pending = append(pending, p...)
			f.sized(len(p) == n.chunk && isTimeout(err))
			if err != nil {
				if cause == nil {
					cause = err
				}
				if len(p) == n.chunk {
					// Nothing got through: keep the rest for later.
					pending = append(pending, f.unsend(n.out)...)
					n.out = nil
				}
			}
		}
	}
}

// route sorts batches by the master to send them to, keeping their order,
// into each node's out, and returns the nodes that have some.
func (f *Flusher) route(batches []*batch) []*node {
	nodes := f.routeBuf[:0]
	if f.topo == nil {
		f.single.out = batches
		f.routeBuf = append(nodes, f.single)
		return f.routeBuf
	}
	for _, n := range f.topo.nodes {
		n.out = n.out[:0]
	}
	for _, b := range batches {
		n := f.topo.route(b.group)
		if len(n.out) == 0 {
			nodes = append(nodes, n)
		}
		n.out = append(n.out, b)
	}
	f.routeBuf = nodes
	return nodes
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

// lost gives up on a batch whose record vanished while it was in doubt:
// resending it could count it twice. Its deltas leave the Source.
func (f *Flusher) lost(b *batch) error {
	for i := range b.deltas {
		b.deltas[i].Lost = true
	}
	f.src.Settle(b.deltas)
	err := &LostError{Record: b.record, Seq: b.seq, Deltas: make(map[string]int64, len(b.deltas)), Delta: sum(b.deltas)}
	for _, d := range b.deltas {
		err.Deltas[f.opts.KeyPrefix+d.Key] += d.N
	}
	f.report(err)
	return err
}

// settle splits a confirmed batch into the deltas applied, those whose
// token Redis held (not applied), those refused for their key, and those
// of keys the master did not serve (moved).
func (f *Flusher) settle(b *batch, r scriptReply) []error {
	if len(r.failed) == 0 && len(r.seen) == 0 {
		f.confirmed(b.deltas, b.since)
		return nil
	}
	applied := make([]Delta, 0, len(b.deltas))
	var seen, refused, moved []Delta
	var causes []error
	for i, d := range b.deltas {
		by, failed := r.failed[i]
		switch {
		case r.seen[i]:
			d.TokenSeen = true
			seen = append(seen, d)
		case !failed:
			applied = append(applied, d)
		case notServed(by.msg):
			moved = append(moved, d)
		case by.registration:
			refused = append(refused, d)
			causes = append(causes, registrationErr(d.Register.Set, by.msg))
		default:
			refused = append(refused, d)
			causes = append(causes, keyErr(by.msg))
		}
	}
	f.confirmed(applied, b.since)
	if len(seen) > 0 {
		f.src.Settle(seen)
	}
	f.rerouted(moved, b.since)
	return f.refused(refused, causes, b.since)
}

// rerouted gives back to the Source the deltas of keys their batch's
// master did not serve: none was applied, and the next round sends them
// to the master that serves them, once the slot map is reloaded.
func (f *Flusher) rerouted(ds []Delta, since time.Time) {
	if len(ds) == 0 {
		return
	}
	f.restore(ds, since)
	f.moved += len(ds)
	if f.topo != nil {
		f.topo.stale = true
	}
	f.stats.update(func(s *Stats) { s.Moved += uint64(len(ds)) })
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
