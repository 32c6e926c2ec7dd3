package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/shard"
)

// remote is a counter's value as last read from Redis, kept current with
// this engine's own settled deltas.
type remote struct {
	value int64
	at    time.Time
}

// fetched is the result of one shared GET: the value and the settle epoch
// before it was sent.
type fetched struct {
	value int64
	epoch uint64
}

func (e *Engine) value(ctx context.Context, c *shard.Counter) (int64, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	e.readStats.reads.Add(1)
	for {
		e.mu.RLock()
		if r := e.cache[c.Name()]; r != nil && e.opts.MaxReadAge > 0 && e.opts.Now().Sub(r.at) <= e.opts.MaxReadAge {
			v := r.value + c.Unflushed()
			e.mu.RUnlock()
			e.readStats.hits.Add(1)
			return v, nil
		}
		e.mu.RUnlock()

		ch := e.reads.DoChan(c.Name(), func() (any, error) { return e.fetch(c.Name()) })
		var res singleflightResult
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case r := <-ch:
			res = singleflightResult{r.Val, r.Err}
		}
		if res.err != nil {
			return 0, res.err
		}
		f := res.val.(fetched)
		e.mu.RLock()
		if e.epoch == f.epoch {
			v := f.value + c.Unflushed()
			e.mu.RUnlock()
			return v, nil
		}
		// A flush settled deltas while the GET was in flight: the value
		// may or may not include them. Read again.
		e.mu.RUnlock()
	}
}

type singleflightResult struct {
	val any
	err error
}

// fetch reads name from Redis and caches the value if no deltas settled
// meanwhile. It does not use the caller's context: other readers share it.
func (e *Engine) fetch(name string) (fetched, error) {
	e.mu.RLock()
	epoch := e.epoch
	e.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.FlushTimeout)
	defer cancel()
	e.readStats.roundTrips.Add(1)
	s, err := e.rdb.Get(ctx, e.Key(name)).Result()
	var v int64
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		if strings.HasPrefix(err.Error(), "WRONGTYPE") {
			return fetched{}, fmt.Errorf("engine: read %q: %w", name, flush.ErrWrongType)
		}
		return fetched{}, fmt.Errorf("engine: read %q: %w", name, err)
	default:
		if v, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fetched{}, fmt.Errorf("engine: read %q: %w", name, flush.ErrNotInteger)
		}
	}
	now := e.opts.Now()
	e.mu.Lock()
	if e.epoch == epoch {
		e.cache[name] = &remote{value: v, at: now}
		e.sweepLocked(now)
	}
	e.mu.Unlock()
	return fetched{v, epoch}, nil
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
