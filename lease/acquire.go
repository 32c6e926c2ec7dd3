package lease

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
)

// Acquire obtains the lease called name for ttl, retrying with exponential
// backoff and full jitter (Options.MinRetryDelay doubling up to
// Options.MaxRetryDelay) while it is held elsewhere or Redis errs, until ctx
// ends. When ctx ends first the error wraps ctx.Err(), so
// errors.Is(err, context.Canceled) or context.DeadlineExceeded holds; it
// does not wrap ErrNotObtained. ErrNotReplicated and bad input are returned
// at once. The lease's own context is not a child of ctx: cancelling ctx
// after Acquire returns does not end the lease.
//
// All attempts of one call use one token, so an attempt whose reply was
// lost is recognised by the next one instead of locking the caller out
// until the TTL ends. If ctx ends while such an attempt is unanswered, the
// key may stay held until its TTL passes.
func Acquire(ctx context.Context, rdb redis.UniversalClient, name string, ttl time.Duration, opts Options) (*Lease, error) {
	c, err := opts.resolve(rdb, name, ttl)
	if err != nil {
		return nil, err
	}
	token := rand.Text()
	var st Stats
	var lastErr error
	step := c.MinRetryDelay
	var timer *time.Timer
	for {
		if ctx.Err() != nil {
			return nil, c.gaveUp(ctx, &st, lastErr)
		}
		l, err := c.attempt(ctx, rdb, token, &st)
		switch {
		case err == nil:
			return l, nil
		case ctx.Err() != nil:
			return nil, c.gaveUp(ctx, &st, err)
		case errors.Is(err, ErrNotReplicated):
			return nil, err
		}
		lastErr = err
		// Full jitter: contenders that failed together spread out instead
		// of colliding again on the next step.
		d := mrand.N(step) + 1
		step = min(2*step, c.MaxRetryDelay)
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return nil, c.gaveUp(ctx, &st, lastErr)
		case <-timer.C:
		}
	}
}

// TryAcquire makes one attempt to obtain the lease called name for ttl. It
// returns an error wrapping ErrNotObtained when the lease is held
// elsewhere, wrapping ctx.Err() when ctx ended, ErrNotReplicated, an
// [*InvalidError] for bad input, or the Redis error.
func TryAcquire(ctx context.Context, rdb redis.UniversalClient, name string, ttl time.Duration, opts Options) (*Lease, error) {
	c, err := opts.resolve(rdb, name, ttl)
	if err != nil {
		return nil, err
	}
	var st Stats
	l, err := c.attempt(ctx, rdb, rand.Text(), &st)
	if err != nil && ctx.Err() != nil {
		return nil, c.gaveUp(ctx, &st, err)
	}
	return l, err
}

func (c *config) gaveUp(ctx context.Context, st *Stats, last error) error {
	if last == nil {
		return fmt.Errorf("acquire %q: %d attempts: %w", c.name, st.Attempts, ctx.Err())
	}
	return fmt.Errorf("acquire %q: %d attempts, last: %v: %w", c.name, st.Attempts, last, ctx.Err())
}

// attempt runs the acquire script once (and WAIT, with Options.Replicas).
func (c *config) attempt(ctx context.Context, rdb redis.UniversalClient, token string, st *Stats) (*Lease, error) {
	st.Attempts++
	keys := []string{c.key, c.fenceKey}
	ttlMS := c.ttl.Milliseconds()
	// The local deadline counts from before the send: Redis starts the TTL
	// when it receives the script, which is later.
	sent := c.Now()
	var (
		fence int64
		acked int64
		rts   int
		err   error
	)
	if c.Replicas > 0 {
		fence, acked, rts, err = c.acquireAndWait(ctx, rdb, keys, token, ttlMS)
	} else {
		fence, rts, err = runScript(ctx, rdb, acquireScript, keys, token, ttlMS)
	}
	st.RoundTrips += int64(rts)
	switch {
	case err != nil && fence > 0:
		// Obtained, but WAIT failed: free the lease, as below.
		l := newLease(c, rdb, token, fence, sent, *st)
		_ = l.Release(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("acquire %q: wait for replicas: %w", c.name, err)
	case err != nil:
		return nil, fmt.Errorf("acquire %q: %w", c.name, err)
	case fence == 0:
		return nil, fmt.Errorf("acquire %q: %w", c.name, ErrNotObtained)
	}
	l := newLease(c, rdb, token, fence, sent, *st)
	if c.Replicas > 0 && acked < int64(c.Replicas) {
		// Best effort: the caller will not get the lease, so free it now
		// rather than make others wait out the TTL.
		_ = l.Release(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("acquire %q: %d of %d replicas within %v: %w",
			c.name, acked, c.Replicas, c.ReplicaTimeout, ErrNotReplicated)
	}
	return l, nil
}

// acquireAndWait pipelines the acquire script and WAIT on one connection
// to the key's primary: WAIT counts the replicas that have the writes made
// on its own connection, so both must share one.
func (c *config) acquireAndWait(ctx context.Context, rdb redis.UniversalClient, keys []string, token string, ttlMS int64) (fence, acked int64, rts int, err error) {
	var node redis.Cmdable = rdb
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		m, err := cc.MasterForKey(ctx, c.key)
		if err != nil {
			return 0, 0, 0, err
		}
		node = m
	}
	for _, eval := range []bool{false, true} {
		pipe := node.Pipeline()
		var ev *redis.Cmd
		if eval {
			ev = acquireScript.Eval(ctx, pipe, keys, token, ttlMS)
		} else {
			ev = acquireScript.EvalSha(ctx, pipe, keys, token, ttlMS)
		}
		// WAIT's timeout 0 would mean "forever": send at least 1ms.
		wait := pipe.Do(ctx, "WAIT", c.Replicas, max(c.ReplicaTimeout.Milliseconds(), 1))
		_, _ = pipe.Exec(ctx) // errors are read per command below
		rts++
		if !eval && isNoScript(ev.Err()) {
			continue
		}
		if fence, err = ev.Int64(); err != nil || fence == 0 {
			return fence, 0, rts, err
		}
		acked, err = wait.Int64()
		return fence, acked, rts, err
	}
	panic("unreachable")
}
