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
// Options.MaxRetryDelay) while it is held elsewhere, Redis errs or the
// replicas do not acknowledge it (a failover in progress looks like that),
// until ctx ends. When ctx ends first the error wraps ctx.Err(), so
// errors.Is(err, context.Canceled) or context.DeadlineExceeded holds; it
// does not wrap ErrNotObtained, and wraps ErrNotReplicated only when that
// was why the last attempt failed. Bad input is returned at once. The
// lease's own context is not a child of ctx: cancelling ctx after Acquire
// returns does not end the lease.
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
	return c.acquire(ctx, rdb)
}

// acquire is Acquire after resolve.
func (c *config) acquire(ctx context.Context, rdb redis.UniversalClient) (*Lease, error) {
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
			if !errors.Is(err, ctx.Err()) {
				lastErr = err
			}
			// Else the attempt only reports ctx: the one before says why.
			return nil, c.gaveUp(ctx, &st, lastErr)
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
// elsewhere, wrapping ctx.Err() when ctx ended, wrapping ErrNotReplicated
// when the replicas did not acknowledge it (it was released), an
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
	switch {
	case last == nil:
		return fmt.Errorf("acquire %q: %d attempts: %w", c.name, st.Attempts, ctx.Err())
	case errors.Is(last, ErrNotReplicated):
		// Worth telling apart: the lease was free, the replicas were not.
		return fmt.Errorf("acquire %q: %d attempts, last: %w: %w", c.name, st.Attempts, last, ctx.Err())
	}
	return fmt.Errorf("acquire %q: %d attempts, last: %v: %w", c.name, st.Attempts, last, ctx.Err())
}

// attempt runs the acquire script once, with WAIT as c.repl decides. An
// acquisition the replicas did not acknowledge is released at once rather
// than left for others to wait out: a failover to a replica that lacks it
// would hand the lease to a second owner, and its fence could be issued
// again.
func (c *config) attempt(ctx context.Context, rdb redis.UniversalClient, token string, st *Stats) (*Lease, error) {
	st.Attempts++
	keys := []string{c.key, c.fenceKey}
	// The local deadline counts from before the send: Redis starts the TTL
	// when it receives the script, which is later, and replicas apply the
	// same absolute expiry.
	sent := time.Now()
	fence, rts, err := c.repl.write(ctx, c, rdb, acquireScript, keys, token, c.ttl.Milliseconds())
	st.RoundTrips += int64(rts)
	switch {
	case fence > 0 && err != nil:
		// Best effort, even after ctx ended: the caller will not get the
		// lease, so free it now rather than make others wait out the TTL.
		_, rts, _ := runScript(context.WithoutCancel(ctx), rdb, releaseScript, keys[:1], token)
		st.RoundTrips += int64(rts)
		return nil, fmt.Errorf("acquire %q: %w", c.name, err)
	case err != nil:
		return nil, fmt.Errorf("acquire %q: %w", c.name, err)
	case fence == 0:
		return nil, fmt.Errorf("acquire %q: %w", c.name, ErrNotObtained)
	}
	return newLease(c, rdb, token, fence, sent, *st), nil
}
