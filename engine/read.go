package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/shard"
)

// remote is a counter's value as last read from Redis, kept current with
// this engine's own settled deltas.
type remote struct {
	value int64
	at    time.Time
}

// fetched is the result of one shared GET: the value and the epoch it is
// valid for (see Engine.epoch).
type fetched struct {
	value int64
	epoch uint64
}

// value reads the counter named name: c, or when c is nil whichever
// counter the table holds for name, if any (a read never creates one).
func (e *Engine) value(ctx context.Context, name string, c *shard.Counter) (int64, error) {
	if e.state.Load() != open {
		return 0, ErrClosed
	}
	e.readStats.reads.Add(1)
	for {
		e.mu.RLock()
		if r := e.cache[name]; r != nil && e.opts.MaxReadAge > 0 && time.Now().Sub(r.at) <= e.opts.MaxReadAge {
			v := r.value + e.pendingDelta(name, c)
			e.mu.RUnlock()
			e.readStats.hits.Add(1)
			return v, nil
		}
		e.mu.RUnlock()

		ch := e.reads.DoChan(name, func() (any, error) { return e.fetch(name, c) })
		var res singleflight.Result
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case res = <-ch:
		}
		if res.Err != nil {
			return 0, res.Err
		}
		f := res.Val.(fetched)
		e.mu.RLock()
		if e.epoch == f.epoch {
			// Nothing of the counter was in flight when f was read, and
			// nothing was taken or settled since: f holds exactly the
			// deltas settled so far, the counter the rest.
			v := f.value + e.pendingDelta(name, c)
			e.mu.RUnlock()
			return v, nil
		}
		e.mu.RUnlock() // a flush moved deltas meanwhile: read again
	}
}

// counter is c, or the table's counter named name (nil if none).
func (e *Engine) counter(name string, c *shard.Counter) *shard.Counter {
	if c != nil {
		return c
	}
	return e.table.Lookup(name)
}

// pendingDelta returns what this process added to the counter named name
// (c, or the table's) and has not settled: its delta, and its token adds.
// e.mu must be held.
func (e *Engine) pendingDelta(name string, c *shard.Counter) int64 {
	n := e.once.sums(name).delta
	if c := e.counter(name, c); c != nil {
		n += c.Unflushed()
	}
	return n
}

// fetch reads a counter's Redis value at a moment when none of its deltas
// is in flight, so the value certainly includes every settled delta and
// no other: a GET that overlapped the write of a batch could see its
// delta both in Redis and still in flight. It caches the value and
// returns it with the epoch it is valid for. It does not use the caller's
// context: other readers share it.
func (e *Engine) fetch(name string, c *shard.Counter) (fetched, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.FlushTimeout)
	defer cancel()
	for {
		epoch, err := e.awaitSettled(ctx, name, c)
		if err != nil {
			return fetched{}, err
		}
		e.readStats.roundTrips.Add(1)
		v, err := e.get(ctx, name)
		if err != nil {
			return fetched{}, err
		}
		now := time.Now()
		e.mu.Lock()
		ok := e.epoch == epoch
		if ok {
			e.cache[name] = &remote{value: v, at: now}
			e.sweepLocked(now)
		}
		e.mu.Unlock()
		if ok {
			return fetched{v, epoch}, nil
		}
	}
}

// awaitSettled waits until none of the counter's deltas is in flight (a
// flush takes milliseconds) and returns the epoch at that moment.
func (e *Engine) awaitSettled(ctx context.Context, name string, c *shard.Counter) (uint64, error) {
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 10*time.Millisecond) {
		e.mu.RLock()
		epoch := e.epoch
		settled := e.once.sums(name).flying == 0
		if c := e.counter(name, c); c != nil && c.InFlight() != 0 {
			settled = false
		}
		e.mu.RUnlock()
		if settled {
			return epoch, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("engine: read %q: a flush of it is still unconfirmed: %w", name, flush.ErrPending)
		case <-time.After(wait):
		}
	}
}

// get reads a counter's value from Redis; a missing key is 0.
func (e *Engine) get(ctx context.Context, name string) (int64, error) {
	s, err := e.rdb.Get(ctx, e.Key(name)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return 0, nil
	case err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE"):
		return 0, fmt.Errorf("engine: read %q: %w", name, flush.ErrWrongType)
	case err != nil:
		return 0, fmt.Errorf("engine: read %q: %w", name, err)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("engine: read %q: %w", name, flush.ErrNotInteger)
	}
	return v, nil
}

// sweepLocked drops stale cache entries once the cache has doubled since
// the last sweep, so reading many names does not grow it without bound.
func (e *Engine) sweepLocked(now time.Time) {
	if len(e.cache) < 1024 || len(e.cache) < 2*e.cacheSwept {
		return
	}
	for k, r := range e.cache {
		if now.Sub(r.at) > e.opts.MaxReadAge {
			delete(e.cache, k)
		}
	}
	e.cacheSwept = len(e.cache)
}
