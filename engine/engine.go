package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/shard"
)

// Engine counts in memory and writes behind to Redis. Create it with New
// and end it with Close. It is safe for concurrent use.
type Engine struct {
	rdb     redis.UniversalClient
	opts    Options
	table   *shard.Table
	flusher *flush.Flusher

	// mu orders the flusher's moves of deltas (take, settle) against
	// Value, which must see each delta exactly once: in the counter, in
	// flight, or in the Redis value it read.
	mu         sync.RWMutex
	cache      map[string]*remote          // guarded by mu
	cacheSwept int                         // guarded by mu; cache size after the last sweep
	epoch      uint64                      // guarded by mu; bumped when deltas are taken or settled
	special    map[*shard.Counter]*special // guarded by mu; counters with CounterOptions
	lastSweep  time.Time                   // guarded by mu; last idle sweep of the table

	reads     singleflight.Group
	readStats struct{ reads, hits, roundTrips atomic.Uint64 }
	discarded atomic.Int64
	evicted   atomic.Uint64

	recordsCollected atomic.Uint64

	upkeep  upkeep
	uniques uniques
	once    onces

	// state is read by every Add: padding keeps the counters written by
	// reads and flushes off its cache line.
	_         [64]byte
	state     atomic.Uint32 // open, closing or sealed
	_         [64]byte
	closeOnce sync.Once
	closeErr  error
	rejected  atomic.Uint64
}

// Engine states. Adds are accepted while open. Close moves to closing,
// which rejects new Adds, flushes what was added, and then to sealed: an
// Add that passed the open check before Close began but landed after the
// last flush sees sealed and counts itself rejected.
const (
	open = iota
	closing
	sealed
)

// New returns an Engine writing through rdb and starts its flusher.
// Supported clients are *redis.Client (also from NewFailoverClient, for
// Sentinel) and *redis.ClusterClient; a *redis.Ring, which routes each
// command by its own key, would split a batch's keys across shards, so New
// returns an *InvalidError for it.
func New(rdb redis.UniversalClient, opts Options) (*Engine, error) {
	if err := invalid.Client(ErrInvalid, rdb); err != nil {
		return nil, err
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		rdb:     rdb,
		opts:    opts,
		table:   shard.NewTable(opts.MaxStripes),
		cache:   make(map[string]*remote),
		special: make(map[*shard.Counter]*special),
	}
	e.lastSweep = time.Now()
	e.once.init(opts)
	e.flusher, err = flush.New(rdb, source{e}, opts.flushOptions())
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.flusher.Start()
	e.startUpkeep()
	e.startUniques()
	return e, nil
}

// Counter returns the counter named name, creating it on first use. The
// handle is cheap to keep and use from any goroutine; keep it to skip the
// name lookup on every Add. A counter that has a handle stays in memory
// until Forget; counters used only by name leave memory when idle (see
// Options.IdleEvict).
func (e *Engine) Counter(name string) (*Counter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if e.state.Load() != open {
		return nil, ErrClosed
	}
	c := e.table.Get(name)
	c.Pin()
	return &Counter{e: e, c: c}, nil
}

// Add adds delta to the counter named name. After Close it returns
// ErrClosed and counts the call in Stats.RejectedAdds.
func (e *Engine) Add(name string, delta int64) error {
	if !validName(name) {
		return checkName(name)
	}
	if e.state.Load() != open {
		e.rejected.Add(1)
		return ErrClosed
	}
	e.table.Get(name).Add(delta)
	if e.state.Load() == sealed {
		e.rejected.Add(1)
		return ErrClosed
	}
	return nil
}

// Key returns the Redis key counter name is stored at.
func (e *Engine) Key(name string) string { return e.opts.Namespace + name }

// inSlotOf returns the prefix of the engine's keys that must live in the
// Cluster hash slot of key (reset markers, tokens, scratch keys): a hash
// tag of that slot, first, so that no brace in the namespace can move
// them, then the namespace.
func (e *Engine) inSlotOf(key string) string {
	return "{" + flush.SlotTag(flush.Slot(key)) + "}" + e.opts.Namespace
}

// Forget removes the counter named name from memory and reports whether
// it was there: for names a program knows it is done with (yesterday's
// counters, a user who left). Its unflushed delta is still written, and
// handles on it keep working and flushing, but the next Counter or Add of
// the name starts a new counter (the Redis key is untouched).
func (e *Engine) Forget(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.cache, name)
	if c := e.table.Lookup(name); c != nil {
		e.retireLocked(c)
	}
	return e.table.Delete(name)
}

// Discard drops the delta of the counter named name that has not been
// sent to Redis yet, its token adds (AddOnce) included, and returns it:
// for a key Redis keeps refusing (a *flush.KeyError) whose delta its
// owner gives up on. A delta already sent and in doubt is not affected.
// Discarded deltas are summed in Stats.DiscardedDelta.
func (e *Engine) Discard(name string) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	n := e.once.discard(name)
	if c := e.table.Lookup(name); c != nil {
		n += c.Discard()
	}
	e.discarded.Add(n)
	return n, nil
}

// Flush writes every delta, and every member of a unique count, added
// before the call and waits for Redis. It returns nil only when all of
// them are in Redis; see flush.Flusher.Flush for the errors.
func (e *Engine) Flush(ctx context.Context) error {
	if e.state.Load() != open {
		return ErrClosed
	}
	return errors.Join(e.flusher.Flush(ctx), e.flushUniquesNow(ctx))
}

// Close stops accepting Adds and flushes
// until everything added is in Redis or ctx ends, retrying failed flushes
// with backoff. It returns nil when everything was written, and otherwise
// an *UnflushedError naming what was not, within moments of ctx ending
// even if a flush is stuck waiting on Redis (that flush goes on in the
// background, and what it confirms is in Redis but counted as unflushed in
// the error, as InDoubt). Unique counts are flushed alongside; registers
// left unwritten are in the same *UnflushedError. Close is idempotent; later calls return the first
// call's result.
//
// Every Add is flushed, rejected (ErrClosed, Stats.RejectedAdds) or
// reported in the error; an Add racing the very end of Close may be both
// rejected and reported.
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		e.state.Store(closing)
		uniques := e.closeUniques(ctx)
		done := make(chan error, 1)
		go func() {
			e.stopUpkeep()
			e.flusher.Stop()
			done <- e.finalFlush(ctx)
		}()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			err = fmt.Errorf("engine: close: %w", ctx.Err())
		}
		e.state.Store(sealed)
		e.closeErr = e.uniquesUnflushed(ctx, uniques, e.unflushed(err))
	})
	return e.closeErr
}

// finalFlush flushes until nothing is left to write, backing off between
// failures, until ctx ends.
func (e *Engine) finalFlush(ctx context.Context) error {
	backoff := e.opts.FlushInterval
	for {
		err := e.flusher.Flush(ctx)
		if err == nil && e.anyUnflushed() {
			// An Add that passed the open check just before Close landed
			// after the flush took the deltas: flush it too.
			continue
		}
		if !flush.Retryable(err) || !sleepBackoff(ctx, &backoff) {
			return err // done, only keys Redis refuses (retrying cannot help), or ctx ended
		}
	}
}

func (e *Engine) anyUnflushed() bool {
	if e.once.live.Load() > 0 {
		return true
	}
	found := false
	e.table.Range(func(c *shard.Counter) bool {
		found = c.Unflushed() != 0
		return !found
	})
	return found
}

// unflushed returns nil when nothing is left unwritten, and an
// *UnflushedError for what is otherwise, with err as its cause.
func (e *Engine) unflushed(err error) error {
	u := &UnflushedError{Err: err}
	e.table.Range(func(c *shard.Counter) bool {
		if n := c.Unflushed(); n != 0 {
			u.Keys++
			u.Delta += n
			u.InDoubt += c.InFlight()
			if len(u.Names) < 10 {
				u.Names = append(u.Names, c.Name())
			}
		}
		return true
	})
	e.once.unwritten(u)
	if u.Keys == 0 && u.Tokens == 0 && err == nil {
		return nil
	}
	if u.Keys == 0 && u.Tokens == 0 && !flush.Retryable(err) {
		return err // a *flush.LostError: nothing left in memory, but say so
	}
	if u.Err == nil {
		u.Err = errors.New("added while Close ran")
	}
	return u
}

// WriterID returns the identity of this engine's exactly-once batches.
func (e *Engine) WriterID() string { return e.flusher.WriterID() }

// Client returns the Redis client e writes through.
func (e *Engine) Client() redis.UniversalClient { return e.rdb }

// Options returns e's options, with the defaults applied.
func (e *Engine) Options() Options { return e.opts }
