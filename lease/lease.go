package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is a held Redis lease. It is created by Acquire or TryAcquire; the
// zero value is not usable. Its methods are safe for concurrent use.
//
// A lease ends exactly once, for one cause: Release ([ErrReleased]), its
// local deadline passing ([ErrExpired]), or a refresh finding the token gone
// ([ErrLost]). Then Context is cancelled with that cause, Err returns it,
// and the watchdog, if any, stops.
type Lease struct {
	rdb   redis.UniversalClient
	cfg   config
	token string
	fence int64

	ctx    context.Context
	cancel context.CancelCauseFunc

	attempts   int64
	roundTrips atomic.Int64
	renewals   atomic.Int64

	mu       sync.Mutex
	deadline time.Time   // guarded by mu; local deadline, see Deadline
	timer    *time.Timer // guarded by mu; fires at deadline
	cause    error       // guarded by mu; nil while held
}

// Stats counts the Redis work done for one lease.
type Stats struct {
	// Attempts is the number of acquisition attempts, the successful one
	// included.
	Attempts int64
	// RoundTrips is the number of Redis round trips made for the lease:
	// acquisition attempts, refreshes, TTL queries and the release. A
	// script the server had not cached costs one extra (EVALSHA, then EVAL).
	RoundTrips int64
	// Renewals is the number of successful refreshes, by Refresh or the
	// watchdog.
	Renewals int64
}

func newLease(c *config, rdb redis.UniversalClient, token string, fence int64, sent time.Time, st Stats) *Lease {
	// Not a child of the Acquire call's context: the lease outlives it.
	ctx, cancel := context.WithCancelCause(context.Background())
	l := &Lease{
		rdb:      rdb,
		cfg:      *c,
		token:    token,
		fence:    fence,
		ctx:      ctx,
		cancel:   cancel,
		attempts: st.Attempts,
		deadline: sent.Add(c.ttl - c.SafetyMargin),
	}
	l.roundTrips.Store(st.RoundTrips)
	l.mu.Lock()
	l.timer = time.AfterFunc(time.Until(l.deadline), l.onDeadline)
	l.mu.Unlock()
	if c.AutoRenew {
		go l.watch()
	}
	return l
}

// Name returns the lease's name.
func (l *Lease) Name() string { return l.cfg.name }

// Key returns the Redis key that holds the lease.
func (l *Lease) Key() string { return l.cfg.key }

// Token returns the random ownership token stored in the lease key.
func (l *Lease) Token() string { return l.token }

// Fence returns the fencing number of this acquisition: greater than that
// of every earlier acquisition of the same name, across failovers to a
// replica that acknowledged them (see Options.Replicas), as long as Redis
// keeps the fence key. Pass it with writes so storage can reject stale
// owners.
func (l *Lease) Fence() int64 { return l.fence }

// Context returns a context that is cancelled when the lease ends;
// context.Cause reports why (ErrReleased, ErrExpired or ErrLost). Run the
// work the lease protects under it.
func (l *Lease) Context() context.Context { return l.ctx }

// Done returns a channel that is closed when the lease ends.
func (l *Lease) Done() <-chan struct{} { return l.ctx.Done() }

// Err returns nil while the lease is held, then the cause that ended it:
// ErrReleased, ErrExpired or ErrLost.
func (l *Lease) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

// Deadline returns the local deadline: when the last confirmed acquisition
// or renewal (acknowledged by the replicas wanted) was sent, plus the TTL,
// minus Options.SafetyMargin. The lease ends there unless renewed first.
func (l *Lease) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// Stats returns the lease's counters so far.
func (l *Lease) Stats() Stats {
	return Stats{Attempts: l.attempts, RoundTrips: l.roundTrips.Load(), Renewals: l.renewals.Load()}
}

// Refresh extends the lease to a full TTL from now, if Redis still holds
// its token, and moves the local deadline accordingly once the replicas
// wanted (Options.Replicas) acknowledged the extension. After the lease
// ended it returns the cause without touching Redis. When Redis no longer
// holds the token it ends the lease and returns ErrExpired if the local
// deadline had passed, else ErrLost. An extension the replicas did not
// acknowledge returns an error wrapping ErrNotReplicated and leaves the
// deadline where it was: after a failover an old master still accepts
// it, and the new one would let the key expire on time. Other errors
// (ctx, network) also leave the lease as it was.
func (l *Lease) Refresh(ctx context.Context) error {
	if err := l.Err(); err != nil {
		return fmt.Errorf("refresh %q: %w", l.cfg.name, err)
	}
	sent := time.Now()
	n, rts, err := l.cfg.repl.write(ctx, &l.cfg, l.rdb, refreshScript, []string{l.cfg.key}, l.token, l.cfg.ttl.Milliseconds())
	l.roundTrips.Add(int64(rts))
	if err != nil {
		return fmt.Errorf("refresh %q: %w", l.cfg.name, err)
	}
	if n == 0 {
		return fmt.Errorf("refresh %q: %w", l.cfg.name, l.endGone())
	}
	if err := l.extend(sent); err != nil {
		return fmt.Errorf("refresh %q: %w", l.cfg.name, err)
	}
	l.renewals.Add(1)
	return nil
}

// Release deletes the lease in Redis if Redis still holds its token, and
// ends it. It returns nil when the lease was held until now; an error
// wrapping ErrExpired when the local deadline had passed (the key is still
// deleted if it was ours); ErrLost when the token was gone earlier;
// ErrReleased when already released. On a ctx or network error the lease
// still ends locally and the key expires by its TTL; after ErrExpired,
// Release may be called again to retry the delete.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	cause := l.cause
	if cause == nil && !time.Now().Before(l.deadline) {
		// The deadline passed but its timer has not run yet.
		cause = ErrExpired
		l.endLocked(cause)
	}
	l.endLocked(ErrReleased) // no-op when already ended
	l.mu.Unlock()
	if errors.Is(cause, ErrReleased) || errors.Is(cause, ErrLost) {
		// Nothing of ours is left in Redis: the token is gone for good.
		return fmt.Errorf("release %q: %w", l.cfg.name, cause)
	}
	// With ErrExpired the key may still hold our token (nobody wanted it):
	// delete it so the next owner need not wait out the TTL.
	n, rts, err := runScript(ctx, l.rdb, releaseScript, []string{l.cfg.key}, l.token)
	l.roundTrips.Add(int64(rts))
	switch {
	case cause != nil && err != nil:
		return fmt.Errorf("release %q: %w; delete: %w", l.cfg.name, cause, err)
	case cause != nil:
		return fmt.Errorf("release %q: %w", l.cfg.name, cause)
	case err != nil:
		return fmt.Errorf("release %q: %w", l.cfg.name, err)
	case n == 0:
		return fmt.Errorf("release %q: %w", l.cfg.name, ErrLost)
	}
	return nil
}

// TTL returns the time Redis will keep the lease unless it is refreshed,
// or an error wrapping ErrLost or ErrExpired when Redis no longer holds the
// token (ending the lease), or the cause when the lease already ended.
func (l *Lease) TTL(ctx context.Context) (time.Duration, error) {
	if err := l.Err(); err != nil {
		return 0, fmt.Errorf("ttl %q: %w", l.cfg.name, err)
	}
	n, rts, err := runScript(ctx, l.rdb, ttlScript, []string{l.cfg.key}, l.token)
	l.roundTrips.Add(int64(rts))
	switch {
	case err != nil:
		return 0, fmt.Errorf("ttl %q: %w", l.cfg.name, err)
	case n < 0:
		// -3: not ours. -1 (no expiry) cannot happen to a key we set with PX.
		return 0, fmt.Errorf("ttl %q: %w", l.cfg.name, l.endGone())
	}
	return time.Duration(n) * time.Millisecond, nil
}

// extend moves the deadline to sent+TTL-margin after a confirmed renewal
// that was sent at sent, unless the lease already ended: a late success
// cannot revive a cancelled context.
func (l *Lease) extend(sent time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cause != nil {
		return l.cause
	}
	if d := sent.Add(l.cfg.ttl - l.cfg.SafetyMargin); d.After(l.deadline) {
		l.deadline = d
		l.timer.Reset(time.Until(d))
	}
	return nil
}

// endGone ends the lease after Redis reported the token gone, and returns
// the cause: ErrExpired when the local deadline passed, ErrLost otherwise.
func (l *Lease) endGone() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	cause := ErrLost
	if !time.Now().Before(l.deadline) {
		cause = ErrExpired
	}
	l.endLocked(cause)
	return l.cause
}

// onDeadline runs on the timer. A refresh may have moved the deadline
// after the timer fired, so it re-arms instead of trusting the timer.
func (l *Lease) onDeadline() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cause != nil {
		return
	}
	if now := time.Now(); now.Before(l.deadline) {
		l.timer.Reset(l.deadline.Sub(now))
		return
	}
	l.endLocked(ErrExpired)
}

// endLocked ends the lease with cause unless it already ended. l.mu is held.
func (l *Lease) endLocked(cause error) {
	if l.cause != nil {
		return
	}
	l.cause = cause
	l.timer.Stop()
	l.cancel(cause)
	if cause != ErrReleased {
		l.log(slog.LevelWarn, "lease ended", "cause", cause)
	}
}

// log sends a lifecycle event to Options.Logger, if any, with the lease's
// name and fence.
func (l *Lease) log(level slog.Level, msg string, args ...any) {
	if lg := l.cfg.Logger; lg != nil {
		lg.Log(context.Background(), level, msg, append([]any{"lease", l.cfg.name, "fence", l.fence}, args...)...)
	}
}
