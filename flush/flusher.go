package flush

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/internal/replicas"
)

// Flusher moves deltas from a Source to Redis, in the background every
// Interval (after Start) and on demand (Flush). Create it with New; it is
// safe for concurrent use, and flushes never overlap.
type Flusher struct {
	rdb    redis.UniversalClient
	src    Source
	opts   Options
	id     string     // writer ID: the label in Options.WriterID plus a random part
	script *luaScript // applyScript, or clusterApply on a Cluster
	hasher keyHasher  // slots of KeyPrefix+Key

	sem chan struct{} // held while a flush runs; guards the fields below
	// A group is the set of batches numbered under one writer record: on
	// a single node there is one (0); on a Cluster, one per hash slot a
	// record may live in (see topology).
	single *node     // where batches go without a Cluster
	topo   *topology // where batches go on a Cluster; nil otherwise
	// pending are sent batches whose outcome is unknown, in send order.
	pending   []*batch
	nextSeq   []uint64 // per group: the seq the next new batch gets
	floor     []uint64 // per group: every batch up to it is known applied
	lastTake  time.Time
	fails     int       // consecutive failed flushes, for backoff
	failingAt time.Time // when the current run of failures began
	shrink    int       // pipelines are PipelineKeys>>shrink keys (see pipelineKeys)
	moved     int       // deltas of this round given back for another master
	buf       []Delta
	// Buffers reused by every flush, so that one allocates nothing per key.
	free     []*batch      // recycled batches (see recycle)
	blocked  map[int]bool  // groups with batches in doubt
	cutBuf   []*batch      // new batches of a round
	routeBuf []*node       // the masters a send goes to
	plain    plainPipeline // AtLeastOnce: what a pipeline is built from
	// keyTTLMillis is Options.KeyTTL in ms, where commands can point.
	keyTTLMillis int64
	// tokenTTLMillis is Options.TokenTTL in ms, likewise.
	tokenTTLMillis int64
	// restored holds, per key given back to the Source, the oldest time
	// its delta may date from, so that a delta sent late still counts its
	// full age in Stats.MaxStaleness.
	restored map[string]time.Time
	refusals map[string]*refusal // keys Redis refused, for their backoff

	replicas    *replicas.Policy
	waiting     atomic.Bool       // batches have waited for replicas (logged once)
	accepted    map[int]uint64    // per group: a regressed record accepted as base
	confirmedAt map[int]time.Time // per group: last confirmation
	history     history           // recent confirmations, to size a regression

	stats stats

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// refusal is the backoff state of a key Redis keeps refusing.
type refusal struct {
	n     int       // consecutive refusals
	until time.Time // background flushes hold the key back until then
	err   error     // the last refusal's cause
}

// New returns a Flusher writing src's deltas through rdb, a *redis.Client,
// a failover client or a *redis.ClusterClient (a *redis.Ring returns an
// *InvalidError; a Cluster needs Redis 7.0 or later in
// ExactlyOnce mode). It does not start flushing in the background until
// Start.
func New(rdb redis.UniversalClient, src Source, opts Options) (*Flusher, error) {
	if err := invalid.Client(ErrInvalid, rdb); err != nil {
		return nil, err
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	f := &Flusher{
		rdb:          rdb,
		src:          src,
		opts:         opts,
		id:           writerID(opts.WriterID),
		script:       applyScript,
		keyTTLMillis: opts.KeyTTL.Milliseconds(),
		hasher:       newKeyHasher(opts.KeyPrefix),
		sem:          make(chan struct{}, 1),
		single:       &node{c: rdb, noScript: true},
		lastTake:     time.Now(),
		blocked:      make(map[int]bool),
		restored:     make(map[string]time.Time),
		refusals:     make(map[string]*refusal),

		replicas:    replicas.New(opts.Replicas),
		accepted:    make(map[int]uint64),
		confirmedAt: make(map[int]time.Time),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	f.tokenTTLMillis = opts.TokenTTL.Milliseconds()
	groups := 1
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		groups = slots
		f.script = clusterApply
		f.single = nil
		f.topo = &topology{cc: cc, stale: true}
	}
	f.nextSeq = make([]uint64, groups)
	f.floor = make([]uint64, groups)
	for i := range f.nextSeq {
		f.nextSeq[i] = 1
	}
	return f, nil
}

// writerID makes a writer ID unique to this Flusher whatever the label:
// two writers sharing one would take each other's batches for duplicates
// and drop them.
func writerID(label string) string {
	var b [16]byte
	rand.Read(b[:])
	if label == "" {
		return hex.EncodeToString(b[:])
	}
	return label + "-" + hex.EncodeToString(b[:])
}

// WriterID returns the identity this Flusher's batches carry: the
// Options.WriterID label, if any, and a random part unique to this Flusher.
func (f *Flusher) WriterID() string { return f.id }

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
		_ = f.flush(ctx, false)
		cancel()
		// Fixed rate: the next take is due one delay after this one
		// started, not after it ended, so a delta waits at most Interval
		// to be taken plus one flush to be written.
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
	d := backoff(f.opts.Interval, fails, f.opts.MaxBackoff)
	return d*3/4 + mrand.N(d/2+1)
}

// backoff is base doubled n times, capped at limit.
func backoff(base time.Duration, n int, limit time.Duration) time.Duration {
	d := base << min(n, 30)
	if d > limit || d <= 0 {
		d = limit
	}
	return d
}

// maxReroutes is how many more rounds a flush runs for deltas that went
// back to the Source because their master did not serve their key.
const maxReroutes = 3

// Flush writes every delta the Source held when it was called, and every
// pending batch, and waits for Redis. It returns nil only when all of
// them are applied. Otherwise it returns a *PendingError (errors.Is
// ErrPending, wrapping the cause) when Redis failed and some batches are
// in doubt (they are resent first next time), ctx's error when ctx ended
// first, and *KeyErrors for keys Redis refused (retried at once, whatever
// their backoff), joined.
func (f *Flusher) Flush(ctx context.Context) error { return f.flush(ctx, true) }

// flush runs rounds until one leaves nothing behind that another round
// could write: a round sends at most maxBatchesPerGroup batches per group
// and gives the rest back to the Source. force sends keys Redis refused
// before their backoff has passed.
func (f *Flusher) flush(ctx context.Context, force bool) error {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-f.sem }()
	start := time.Now()
	var err error
	for reroutes := 0; ; {
		var more bool
		if f.opts.Mode == AtLeastOnce {
			more, err = f.roundPlain(ctx, force)
		} else {
			more, err = f.roundExactlyOnce(ctx, force)
		}
		if !more || Retryable(err) {
			break
		}
		if f.moved > 0 {
			// Keys whose slot is being migrated are refused until the
			// migration of the slot ends: leave them to the next flush
			// rather than spin on them.
			if reroutes++; reroutes > maxReroutes {
				moved := fmt.Errorf("flush: %d keys left for a later flush: %w", f.moved, ErrMoved)
				f.report(moved)
				err = errors.Join(moved, err)
				break
			}
		}
		if ctx.Err() != nil {
			err = errors.Join(fmt.Errorf("flush: %w with deltas left to write", ctx.Err()), err)
			break
		}
	}
	end := time.Now()
	failed := Retryable(err)
	switch {
	case failed && f.fails == 0:
		f.failingAt = start
		f.log(slog.LevelWarn, "flush failing; backing off", "err", err, "retry_in", backoff(f.opts.Interval, 1, f.opts.MaxBackoff))
	case !failed && f.fails > 0:
		f.log(slog.LevelInfo, "flush recovered", "failed_flushes", f.fails, "down_for", end.Sub(f.failingAt).Round(time.Millisecond))
	}
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

// take takes fresh deltas from the Source and returns them with the time
// of the previous take, which none of them predates unless it was given
// back before (see age).
func (f *Flusher) take() ([]Delta, time.Time) {
	since := f.lastTake
	f.lastTake = time.Now()
	f.buf = f.src.Take(f.buf[:0])
	return f.buf, since
}

// age returns the oldest time the deltas ds may date from: since, or
// earlier for a delta that was given back to the Source before.
func (f *Flusher) age(ds []Delta, since time.Time) time.Time {
	if len(f.restored) == 0 {
		return since
	}
	for _, d := range ds {
		if t, ok := f.restored[d.Key]; ok {
			delete(f.restored, d.Key)
			if t.Before(since) {
				since = t
			}
		}
	}
	return since
}

// restore gives ds (no older than since) back to the Source, remembering
// their age.
func (f *Flusher) restore(ds []Delta, since time.Time) {
	if len(ds) == 0 {
		return
	}
	f.src.Restore(ds)
	for _, d := range ds {
		if t, ok := f.restored[d.Key]; !ok || since.Before(t) {
			f.restored[d.Key] = since
		}
	}
}

// hold takes out of ds the keys whose refusal backoff has not passed
// (unless force), gives them back to the Source and returns the rest with
// a *KeyError for each held key. The errors are not reported again.
func (f *Flusher) hold(ds []Delta, since time.Time, force bool) ([]Delta, []error) {
	if len(f.refusals) == 0 {
		return ds, nil
	}
	now := time.Now()
	var held []Delta
	kept := ds[:0]
	for _, d := range ds {
		r := f.refusals[d.Key]
		if r == nil || force || !now.Before(r.until) {
			kept = append(kept, d)
			continue
		}
		held = append(held, d)
	}
	errs := keyErrors(f.opts.KeyPrefix, held, func(i int) *refusal { return f.refusals[held[i].Key] })
	for k, r := range f.refusals {
		// A key not retried long after its backoff ended is no longer
		// dirty (its delta was discarded): forget it.
		if now.Sub(r.until) > 2*f.opts.MaxKeyBackoff {
			delete(f.refusals, k)
		}
	}
	f.restore(held, f.age(held, since))
	return kept, errs
}

// confirmed records that ds (no older than since) are in Redis.
func (f *Flusher) confirmed(ds []Delta, since time.Time) {
	if len(ds) == 0 {
		return
	}
	f.src.Settle(ds)
	if len(f.refusals) > 0 {
		for _, d := range ds {
			delete(f.refusals, d.Key)
		}
	}
	stale := time.Now().Sub(since)
	f.stats.update(func(s *Stats) {
		s.KeysFlushed += uint64(len(ds))
		s.DeltaFlushed += sum(ds)
		s.MaxStaleness = max(s.MaxStaleness, stale)
	})
}

// refused gives back to the Source the deltas Redis refused for their
// key, causes[i] the cause of ds[i], and backs their keys off: once per
// key, however many of its deltas (token adds) were refused. It reports
// and returns one *KeyError per key, with the sum of its refused deltas.
func (f *Flusher) refused(ds []Delta, causes []error, since time.Time) []error {
	f.restore(ds, since)
	now := time.Now()
	errs := keyErrors(f.opts.KeyPrefix, ds, func(i int) *refusal {
		r := f.refusals[ds[i].Key]
		if r == nil {
			r = &refusal{}
			f.refusals[ds[i].Key] = r
		}
		r.n++
		r.err = causes[i]
		r.until = now.Add(backoff(f.opts.Interval, r.n, f.opts.MaxKeyBackoff))
		return r
	})
	for _, err := range errs {
		f.report(err)
	}
	f.stats.update(func(s *Stats) { s.KeyErrors += uint64(len(ds)) })
	return errs
}

// keyErrors returns one *KeyError per key of ds, with the sum of its
// deltas and the refusal that refusal returns for its first delta (it is
// called once per key, with that delta's index).
func keyErrors(prefix string, ds []Delta, refusal func(i int) *refusal) []error {
	var errs []error
	byKey := make(map[string]*KeyError, len(ds))
	for i, d := range ds {
		if e := byKey[d.Key]; e != nil {
			e.Delta += d.N
			continue
		}
		r := refusal(i)
		e := &KeyError{Key: prefix + d.Key, Delta: d.N, Err: r.err, Refusals: r.n}
		byKey[d.Key] = e
		errs = append(errs, e)
	}
	return errs
}

func (f *Flusher) report(err error) {
	f.stats.update(func(s *Stats) { s.LastError = err })
	var lost *LostError
	var regressed *RegressionError
	if errors.As(err, &lost) || errors.As(err, &regressed) {
		// Redis lost acknowledged writes, or the record proving them: the
		// operator should know whatever OnError does.
		f.log(slog.LevelError, "redis lost writes", "err", err)
	}
	if f.opts.OnError != nil {
		f.opts.OnError(err)
	}
}

// Retryable reports whether an error from Flush may go away by flushing
// again: it does unless it is nil or made only of *KeyErrors, which need
// the data in Redis fixed first, and *LostErrors and *RegressionErrors,
// which report what is final.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if Retryable(e) {
				return true
			}
		}
		return false
	}
	var ke *KeyError
	var le *LostError
	var re *RegressionError
	return !errors.As(err, &ke) && !errors.As(err, &le) && !errors.As(err, &re)
}

// log sends a lifecycle event to Options.Logger, if any.
func (f *Flusher) log(level slog.Level, msg string, args ...any) {
	if f.opts.Logger != nil {
		f.opts.Logger.Log(context.Background(), level, msg, args...)
	}
}
