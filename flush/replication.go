package flush

import (
	"errors"
	"fmt"
	"time"

	"github.com/abacus-go/abacus/internal/replicas"
)

// ErrNotReplicated is wrapped by *ReplicationError: fewer replicas than
// wanted acknowledged a batch. The batch is applied on the master but kept
// and resent (a duplicate there) until a WAIT after it succeeds, so that a
// failover cannot take it away after it was confirmed.
var ErrNotReplicated = errors.New("flush: batch not acknowledged by the replicas wanted")

// ReplicationError reports a WAIT after a pipeline of batches that fell
// short or failed: Op names the pipeline, Want and Acked count the
// replicas asked for and those that acknowledged within Timeout, and Err
// is WAIT's own failure, if it failed. It wraps ErrNotReplicated and is
// the same type as every abacus package's ReplicationError.
type ReplicationError = replicas.Error

// ErrRegressed is wrapped by *RegressionError.
var ErrRegressed = errors.New("flush: redis lost acknowledged batches")

// RegressionError reports a writer record found behind what the writer
// knew was applied (and replicated, where it waits for replicas): Redis
// lost acknowledged writes, in a failover to a replica that missed them or
// a restart without persistence. Batches Recorded+1 through Floor are
// gone from Redis; Keys and Delta sum those the writer still remembers
// (Complete when it remembers all of them). Batches still held (in doubt
// or awaiting replicas) are resent on top of the record as found, exactly
// once.
type RegressionError struct {
	Record          string
	Recorded, Floor uint64
	Keys            int
	Delta           int64
	Complete        bool
}

func (e *RegressionError) Error() string {
	sum := fmt.Sprintf("%d keys, delta %d", e.Keys, e.Delta)
	if !e.Complete {
		sum = "at least " + sum
	}
	return fmt.Sprintf("flush: record %s at batch %d, behind batch %d known applied: batches %d-%d lost (%s): %v",
		e.Record, e.Recorded, e.Floor, e.Recorded+1, e.Floor, sum, ErrRegressed)
}

// Is makes errors.Is(err, ErrRegressed) true.
func (e *RegressionError) Is(target error) bool { return target == ErrRegressed }

// base is the lowest recorded seq the script accepts for group g: the
// floor, or the record found after a regression the writer accepted.
func (f *Flusher) base(g int) uint64 {
	if b, ok := f.accepted[g]; ok {
		return b
	}
	return f.floor[g]
}

// regressed handles a record found at last, behind the floor of b's
// group: it accepts last as the new base and returns the error to report,
// or nil when the record was simply collected while the writer was idle.
func (f *Flusher) regressed(b *batch, last uint64) error {
	g := b.group
	f.accepted[g] = last
	now := time.Now()
	if last == 0 && now.Sub(f.confirmedAt[g]) > f.opts.RecordTTL/2 {
		return nil // collected: this writer was idle in the group that long
	}
	err := &RegressionError{Record: b.record, Recorded: last, Floor: f.floor[g]}
	var n uint64
	f.history.each(func(h confirmation) {
		if h.group == g && h.seq > last && h.seq <= err.Floor {
			n++
			err.Keys += h.keys
			err.Delta += h.delta
		}
	})
	err.Complete = n == err.Floor-last
	f.stats.update(func(s *Stats) {
		s.Regressions++
		s.RegressedDelta += err.Delta
	})
	f.report(err)
	return err
}

// historySize is how many confirmed batches a Flusher remembers, to tell
// what a regression lost.
const historySize = 1 << 14

// confirmation is a confirmed batch, remembered.
type confirmation struct {
	group int
	seq   uint64
	keys  int
	delta int64
	at    time.Time
}

// history is a ring of the latest confirmations.
type history struct {
	ring []confirmation
	next int
}

func (h *history) add(b *batch, at time.Time) {
	c := confirmation{group: b.group, seq: b.seq, keys: len(b.deltas), delta: sum(b.deltas), at: at}
	if len(h.ring) < historySize {
		h.ring = append(h.ring, c)
		return
	}
	h.ring[h.next] = c
	h.next = (h.next + 1) % historySize
}

func (h *history) each(fn func(confirmation)) {
	for _, c := range h.ring {
		fn(c)
	}
}
