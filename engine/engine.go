package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/shard"
)

// Engine counts in memory and writes behind to Redis. Create it with New
// and end it with Close. It is safe for concurrent use.
type Engine struct {
	rdb     redis.UniversalClient
	opts    Options
	table   *shard.Table
	flusher *flush.Flusher

	// mu orders the flusher's moves of deltas (drain, settle) against
	// Value, which must see each delta exactly once: in the counter, in
	// flight, or in the Redis value it read.
	mu         sync.RWMutex
	cache      map[string]*remote // guarded by mu
	cacheSwept int                // guarded by mu; cache size after the last sweep
	epoch      uint64             // guarded by mu; bumped when deltas are drained or settled

	reads     singleflight.Group
	readStats struct{ reads, hits, roundTrips atomic.Uint64 }

	serials serials
	rollups rollups

	// closed is read by every Add: padding keeps the counters written by
	// reads and flushes off its cache line.
	_         [64]byte
	closed    atomic.Bool
	_         [64]byte
	closeOnce sync.Once
	closeErr  error
	rejected  atomic.Uint64
}

// New returns an Engine writing through rdb (a *redis.Client,
// *redis.ClusterClient or failover client) and starts its flusher.
func New(rdb redis.UniversalClient, opts Options) (*Engine, error) {
	if rdb == nil {
		return nil, &OptionError{"rdb", nil, "a Redis client is required"}
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		rdb:   rdb,
		opts:  opts,
		table: shard.NewTable(opts.MaxStripes),
		cache: make(map[string]*remote),
	}
	e.flusher, err = flush.New(rdb, source{e}, opts.flushOptions(opts.OnError))
	if err != nil {
		return nil, &OptionError{"flush", err, err.Error()}
	}
	e.flusher.Start()
	return e, nil
}

// Counter returns the counter named name, creating it on first use. The
// handle is cheap to keep and use from any goroutine; keep it to skip the
// name lookup on every Add.
func (e *Engine) Counter(name string) (*Counter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if e.closed.Load() {
		return nil, ErrClosed
	}
	return &Counter{e: e, c: e.table.Get(name)}, nil
}

// Add adds delta to the counter named name.
func (e *Engine) Add(name string, delta int64) error {
	if !validName(name) {
		return checkName(name)
	}
	if e.closed.Load() {
		e.rejected.Add(1)
		return ErrClosed
	}
	e.table.Get(name).Add(delta)
	return nil
}

// Key returns the Redis key counter name is stored at.
func (e *Engine) Key(name string) string { return e.opts.Namespace + name }

// Flush writes every delta added so far and waits for Redis. See
// flush.Flusher.Flush for the errors.
func (e *Engine) Flush(ctx context.Context) error {
	if e.closed.Load() {
		return ErrClosed
	}
	return e.flusher.Flush(ctx)
}

// Close stops accepting Adds, stops the engine's Rollups, flushes
// everything, and stops the flusher and the Serial allocators.
// It retries failing flushes until ctx ends, then returns an
// *UnflushedError naming what could not be written. Close is idempotent;
// later calls return the first call's result.
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.stopRollups()
		e.flusher.Stop()
		e.closeErr = errors.Join(e.finalFlush(ctx), e.closeSerials())
	})
	return e.closeErr
}

func (e *Engine) finalFlush(ctx context.Context) error {
	backoff := e.opts.FlushInterval
	var err error
	for {
		// Two rounds: an Add that passed the closed check just before
		// Close may land after the first drain.
		if err = e.flusher.Flush(ctx); err == nil {
			err = e.flusher.Flush(ctx)
		}
		if !flush.Retryable(err) {
			break // done, or only keys Redis refuses: retrying cannot help
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
			backoff = min(2*backoff, time.Second)
			continue
		}
		break
	}
	if err == nil {
		return nil
	}
	u := &UnflushedError{Err: err}
	e.table.Range(func(c *shard.Counter) bool {
		if n := c.Unflushed(); n != 0 {
			u.Keys++
			u.Delta += n
			if len(u.Names) < 10 {
				u.Names = append(u.Names, c.Name())
			}
		}
		return true
	})
	return u
}

// WriterID returns the identity of this engine's exactly-once batches.
func (e *Engine) WriterID() string { return e.flusher.WriterID() }
