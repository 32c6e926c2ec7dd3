package flush

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxBatchesPerGroup bounds the batches of one group in doubt at once, so
// duplicates can always find their per-key errors (see failureWindow).
const maxBatchesPerGroup = failureWindow

// flushExactlyOnce resends pending batches, cuts fresh deltas into new
// batches for the groups with nothing pending, and sends them all.
func (f *Flusher) flushExactlyOnce(ctx context.Context) error {
	blocked := make(map[int]bool, len(f.pending))
	for _, b := range f.pending {
		blocked[b.group] = true
	}
	batches := f.pending
	// With one group, anything pending blocks everything: leave the fresh
	// deltas coalescing in the Source rather than draining and restoring.
	if !(len(f.pending) > 0 && !f.cluster) {
		fresh, since := f.drain()
		var restore []Delta
		batches, restore = f.cut(batches, fresh, since, blocked)
		if len(restore) > 0 {
			f.src.Restore(restore)
		}
	}
	f.pending = nil
	if len(batches) == 0 {
		return nil
	}
	pending, keyErrs, sendErr := f.send(ctx, batches)
	f.pending = pending
	if len(pending) > 0 || sendErr != nil {
		if sendErr == nil {
			sendErr = errors.New("outcome not yet known")
		}
		err := &PendingError{Batches: len(pending), Err: sendErr}
		for _, b := range pending {
			err.Keys += len(b.deltas)
			err.Delta += sum(b.deltas)
		}
		f.report(err)
		return errors.Join(append([]error{err}, keyErrs...)...)
	}
	return errors.Join(keyErrs...)
}

// cut groups fresh deltas by slot and appends them to batches as new
// batches of at most BatchKeys keys. Deltas of blocked groups, and beyond
// maxBatchesPerGroup batches per group, are returned to be restored.
func (f *Flusher) cut(batches []*batch, fresh []Delta, since time.Time, blocked map[int]bool) ([]*batch, []Delta) {
	groups := map[int][]Delta{0: fresh}
	if f.cluster {
		groups = make(map[int][]Delta)
		for _, d := range fresh {
			g := Slot(d.Key)
			groups[g] = append(groups[g], d)
		}
	}
	var restore []Delta
	for g, ds := range groups {
		if blocked[g] {
			restore = append(restore, ds...)
			continue
		}
		for n := 0; len(ds) > 0; n++ {
			if n == maxBatchesPerGroup {
				restore = append(restore, ds...)
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
				since:  since,
			})
			f.nextSeq[g]++
		}
	}
	return batches, restore
}

// record is the writer record key guarding group g.
func (f *Flusher) record(g int) string {
	if f.cluster {
		return f.opts.RecordPrefix + "{" + slotTags()[g] + "}:" + f.opts.WriterID
	}
	return f.opts.RecordPrefix + f.opts.WriterID
}

// send sends batches in order, in pipelines of at most PipelineKeys keys,
// and settles what Redis confirms. It returns the batches still in doubt
// (in order), the key errors met, and the last transport error. After a
// pipeline fails outright it stops: batches never sent are dropped and
// their deltas restored, with their sequence numbers given back.
func (f *Flusher) send(ctx context.Context, batches []*batch) (pending []*batch, keyErrs []error, lastErr error) {
	for len(batches) > 0 {
		n, keys := 0, 0
		for n < len(batches) && (n == 0 || keys+len(batches[n].deltas) <= f.opts.PipelineKeys) {
			keys += len(batches[n].deltas)
			n++
		}
		chunk := batches[:n]
		batches = batches[n:]
		p, errs, err := f.sendPipeline(ctx, chunk)
		if f.noScript && len(p) > 0 {
			// NOSCRIPT (Redis restarted, failed over, or SCRIPT FLUSH):
			// send what it refused once more, as EVAL, before anything
			// after it.
			var more []error
			p, more, err = f.sendPipeline(ctx, p)
			errs = append(errs, more...)
		}
		pending = append(pending, p...)
		keyErrs = append(keyErrs, errs...)
		if err != nil {
			lastErr = err
			if len(p) == len(chunk) {
				// Nothing got through: keep the rest for later.
				pending = append(pending, f.unsend(batches)...)
				break
			}
		}
	}
	return pending, keyErrs, lastErr
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
		f.src.Restore(b.deltas)
		f.nextSeq[b.group] = min(f.nextSeq[b.group], b.seq)
	}
	return keep
}

func (f *Flusher) sendPipeline(ctx context.Context, chunk []*batch) (pending []*batch, keyErrs []error, err error) {
	pipe := f.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(chunk))
	// EVAL carries the script and caches it in Redis; EVALSHA only names
	// it. Use EVAL until a reply shows the script is cached, and after
	// any NOSCRIPT: no separate SCRIPT LOAD round trip that could fail on
	// its own.
	eval := f.noScript
	f.noScript = false
	var resent, dups uint64
	for i, b := range chunk {
		keys, args := b.keysAndArgs(f.floor[b.group], f.opts.RecordTTL, f.opts.KeyTTL)
		if eval {
			cmds[i] = applyScript.Eval(ctx, pipe, keys, args...)
		} else {
			cmds[i] = applyScript.EvalSha(ctx, pipe, keys, args...)
		}
		if b.sent > 0 {
			resent++
		}
		b.sent++
	}
	pipe.Exec(ctx) // errors are read per command below
	defer func() {
		f.stats.update(func(s *Stats) {
			s.RoundTrips++
			s.Commands += uint64(len(chunk))
			s.Resent += resent
			s.Duplicates += dups
		})
	}()
	for i, b := range chunk {
		v, cerr := cmds[i].Result()
		if cerr != nil {
			if isNoScript(cerr) {
				f.noScript = true
			}
			err = fmt.Errorf("batch %d (%d keys): %w", b.seq, len(b.deltas), cerr)
			pending = append(pending, b)
			continue
		}
		r, perr := parseScriptReply(v)
		if perr != nil || r.outcome == outcomeOutOfOrder {
			if perr == nil {
				perr = fmt.Errorf("batch %d out of order: an earlier batch is in doubt", b.seq)
			}
			err = perr
			pending = append(pending, b)
			continue
		}
		if r.outcome == outcomeDuplicate {
			dups++
		}
		f.floor[b.group] = max(f.floor[b.group], b.seq)
		keyErrs = append(keyErrs, f.settle(b, r.failed)...)
	}
	return pending, keyErrs, err
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
	return f.refused(refused, msgs)
}
