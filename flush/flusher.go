package flush

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Flusher moves deltas from a Source to Redis, in the background every
// Interval (after Start) and on demand (Flush). Create it with New; it is
// safe for concurrent use, and flushes never overlap.
type Flusher struct {
	rdb     redis.UniversalClient
	src     Source
	opts    Options
	cluster bool

	sem chan struct{} // held while a flush runs; guards the fields below
	// pending are sent batches whose outcome is unknown, in send order.
	pending   []*batch
	nextSeq   []uint64 // per group: the seq the next new batch gets
	floor     []uint64 // per group: every batch up to it is known applied
	lastDrain time.Time
	noScript  bool // the script may not be cached: send EVAL, not EVALSHA
	fails     int  // consecutive failed flushes, for backoff
	buf       []Delta

	stats stats

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// New returns a Flusher writing src's deltas through rdb. It does not
// start flushing in the background until Start.
func New(rdb redis.UniversalClient, src Source, opts Options) (*Flusher, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	_, cluster := rdb.(*redis.ClusterClient)
	groups := 1
	if cluster {
		groups = slots
	}
	f := &Flusher{
		rdb:       rdb,
		src:       src,
		opts:      opts,
		cluster:   cluster,
		sem:       make(chan struct{}, 1),
		nextSeq:   make([]uint64, groups),
		floor:     make([]uint64, groups),
		lastDrain: opts.Now(),
		noScript:  true,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	for i := range f.nextSeq {
		f.nextSeq[i] = 1
	}
	return f, nil
}

// WriterID returns the identity this Flusher's batches carry.
func (f *Flusher) WriterID() string { return f.opts.WriterID }

// Options returns the options in effect, defaults applied.
func (f *Flusher) Options() Options { return f.opts }

// Stats returns a snapshot of the Flusher's counters.
func (f *Flusher) Stats() Stats { return f.stats.get() }

// Start begins flushing every Interval in a background goroutine, backing
// off exponentially (up to MaxBackoff) while flushes fail.
func (f *Flusher) Start() {
	f.startOnce.Do(func() { go f.run() })
}

// Stop ends the background goroutine, waiting for a flush in progress. It
// does not flush; call Flush after Stop for a final flush.
func (f *Flusher) Stop() {
	f.stopOnce.Do(func() { close(f.stop) })
	f.startOnce.Do(func() { close(f.done) }) // never started: nothing to wait for
	<-f.done
}

func (f *Flusher) run() {
	defer close(f.done)
	t := time.NewTimer(f.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), f.opts.Timeout)
		// A failed background flush is reported through Stats and OnError;
		// its batches stay pending for the next one.
		_ = f.Flush(ctx)
		cancel()
		// Fixed rate: the next drain is due one delay after this one
		// started, not after it ended, so a delta waits at most Interval
		// to be drained plus one flush to be written.
		t.Reset(max(0, f.delay()-time.Since(start)))
	}
}

// delay is the wait before the next background flush: Interval while
// healthy, doubling per consecutive failure up to MaxBackoff, jittered by
// ±25% so that many writers do not retry in lockstep.
func (f *Flusher) delay() time.Duration {
	f.sem <- struct{}{}
	fails := f.fails
	<-f.sem
	if fails == 0 {
		return f.opts.Interval
	}
	d := f.opts.Interval << min(fails, 20)
	if d > f.opts.MaxBackoff || d <= 0 {
		d = f.opts.MaxBackoff
	}
	return d*3/4 + rand.N(d/2+1)
}

// Flush sends everything drained so far and every pending batch, and
// waits for Redis. It returns nil when all of it was applied; a
// *PendingError (errors.Is ErrPending) when some batches are still in
// doubt and will be resent; and the *KeyErrors met, joined, otherwise.
func (f *Flusher) Flush(ctx context.Context) error {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-f.sem }()
	start := f.opts.Now()
	var err error
	if f.opts.Mode == AtLeastOnce {
		err = f.flushPlain(ctx)
	} else {
		err = f.flushExactlyOnce(ctx)
	}
	end := f.opts.Now()
	failed := Retryable(err)
	if failed {
		f.fails++
	} else {
		f.fails = 0
	}
	var pb, pk int
	var pd int64
	for _, b := range f.pending {
		pb++
		pk += len(b.deltas)
		pd += sum(b.deltas)
	}
	f.stats.update(func(s *Stats) {
		s.Flushes++
		if failed {
			s.FailedFlushes++
		}
		s.PendingBatches, s.PendingKeys, s.PendingDelta = pb, pk, pd
		s.LastFlush = end
		s.LastFlushDuration = end.Sub(start)
		s.MaxFlushDuration = max(s.MaxFlushDuration, s.LastFlushDuration)
	})
	return err
}

// drain takes fresh deltas from the Source and returns them with the time
// of the previous drain, which none of them predates.
func (f *Flusher) drain() ([]Delta, time.Time) {
	since := f.lastDrain
	f.lastDrain = f.opts.Now()
	f.buf = f.src.Drain(f.buf[:0])
	return f.buf, since
}

// confirmed records that ds (drained after since) are in Redis.
func (f *Flusher) confirmed(ds []Delta, since time.Time) {
	if len(ds) == 0 {
		return
	}
	f.src.Settle(ds)
	stale := f.opts.Now().Sub(since)
	f.stats.update(func(s *Stats) {
		s.KeysFlushed += uint64(len(ds))
		s.DeltaFlushed += sum(ds)
		s.MaxStaleness = max(s.MaxStaleness, stale)
	})
}

// refused reports the deltas Redis refused for their key and gives them
// back to the Source; it returns the errors.
func (f *Flusher) refused(ds []Delta, msgs []string) []error {
	f.src.Restore(ds)
	errs := make([]error, len(ds))
	for i, d := range ds {
		errs[i] = &KeyError{Key: d.Key, Delta: d.N, Err: keyErr(msgs[i])}
		f.report(errs[i])
	}
	f.stats.update(func(s *Stats) { s.KeyErrors += uint64(len(ds)) })
	return errs
}

func (f *Flusher) report(err error) {
	f.stats.update(func(s *Stats) { s.LastError = err })
	if f.opts.OnError != nil {
		f.opts.OnError(err)
	}
}

// Retryable reports whether an error from Flush may go away by flushing
// again: it does unless it is nil or made only of *KeyErrors, which need
// the data in Redis fixed first.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var ke *KeyError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !errors.As(e, &ke) {
				return true
			}
		}
		return false
	}
	return !errors.As(err, &ke)
}

// isNoScript reports a script cache miss: the batch was not applied.
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
