package serial

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/incrby"
	"github.com/abacus-go/abacus/internal/replicas"
)

// startFetchLocked starts fetching a block of a.size in the background and
// returns the call; the caller has checked that none is in flight. The fetch
// does not run under a caller's context because its block belongs to every
// caller: one caller giving up must not waste it. The client's timeouts
// bound it.
func (a *Allocator) startFetchLocked() *fetchCall {
	c := &fetchCall{
		done: make(chan struct{}), gen: a.gen, size: a.size,
		start: a.now(),
	}
	a.inflight = c
	go a.fetch(c)
	return c
}

// Retry backoff after a failed background fetch: it doubles from
// retryMin to retryMax and resets when a fetch succeeds. A failed WAIT has
// already taken ReplicaTimeout; a refused connection (a master gone) fails at
// once, and must not spin.
const (
	retryMin = 50 * time.Millisecond
	retryMax = time.Second
)

// fetch leases one block and appends it to a.ready, or records why not.
func (a *Allocator) fetch(c *fetchCall) {
	ctx := context.Background()
	want := a.policy.Want(ctx, a.rdb)
	end, err := a.incr(ctx, c.size, want)
	a.mu.Lock()
	defer close(c.done)
	defer a.mu.Unlock()
	a.inflight = nil
	a.stats.roundTrips++
	// In auto mode want goes from 0 to 1 once, when the policy first sees
	// a replica. A fixed Replicas waits from the first fetch on, whether
	// or not a replica was ever seen: no change to report.
	if want > 0 && a.want == 0 && a.opts.Replicas == 0 {
		a.log(slog.LevelInfo, "replicas seen; blocks now wait for them", "replicas", want, "timeout", a.opts.ReplicaTimeout)
	}
	a.want = want
	switch {
	case a.err != nil: // closed, or a regression seen meanwhile
		c.err = a.err
		return
	case c.gen != a.gen:
		return // requested before Resume; waiters retry with a fresh fetch
	case err != nil:
		a.stats.fetchErrors++
		c.err = err
		a.failedLocked(err)
		a.retryLaterLocked()
		return
	}
	base := end - c.size
	// INCRBY replies on one key only ever grow, so a block must start above
	// everything accepted before; anything else means Redis lost writes.
	// HighWater starts at 0, which also refuses blocks reaching zero or
	// negative IDs (a key holding a negative number). This sees only this
	// Allocator's own blocks: a block another process was granted and
	// Redis then lost is invisible here, which is why blocks wait for a
	// replica by default.
	if base < a.highWater {
		a.stats.regressions++
		rerr := &RegressionError{Key: a.key, End: end, Size: c.size, HighWater: a.highWater}
		a.log(slog.LevelError, "redis lost writes", "err", rerr)
		a.err = rerr
		a.dropLocked()
		c.err = rerr
		return
	}
	a.highWater = end
	a.stats.blocks++
	if a.failing > 0 {
		a.log(slog.LevelInfo, "block fetch recovered", "failed_fetches", a.failing,
			"discarded_blocks", a.discards, "down_for", a.now().Sub(a.failedAt).Round(time.Millisecond))
	}
	a.failing, a.failure, a.discards = 0, nil, 0
	a.stopRetryLocked()
	a.lag = nextLag(a.lag, a.now().Sub(c.start))
	a.ready = append(a.ready, &block{base: base, size: c.size})
	a.readyIDs += c.size
	a.fetchAheadLocked()
}

// failedLocked records a failed fetch. It logs the first failure of a
// spell, and the first block in it discarded for want of replicas, not
// every retry: a failover can fail fetches for many seconds.
func (a *Allocator) failedLocked(err error) {
	a.failing++
	a.failure = err
	if a.failing == 1 {
		a.failedAt = a.now()
	}
	if errors.Is(err, ErrNotReplicated) {
		a.stats.unreplicated++
		if a.discards++; a.discards == 1 {
			a.log(slog.LevelWarn, "block discarded: too few replicas acknowledged it; retrying", "err", err)
			return
		}
	}
	if a.failing == 1 {
		a.log(slog.LevelWarn, "block fetch failing; retrying", "err", err)
	}
}

// retryLaterLocked schedules the next background fetch after a failed one,
// if a block is still wanted ahead. Callers that run out of IDs meanwhile
// do not wait for it: they fetch at once (see nextSlow).
func (a *Allocator) retryLaterLocked() {
	a.stopRetryLocked()
	if !a.wantsBlockLocked() {
		return
	}
	backoff := retryMax
	if a.failing < 8 {
		backoff = min(retryMin<<(a.failing-1), retryMax)
	}
	var t *time.Timer
	t = time.AfterFunc(backoff, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.retry != t {
			return // stopped or replaced meanwhile
		}
		a.retry = nil
		a.fetchAheadLocked()
	})
	a.retry = t
}

// incr runs INCRBY key size and returns its reply. When want > 0 it is
// followed by WAIT want on the same connection, and a block fewer replicas
// acknowledged is a *ReplicationError: the caller must not issue from it.
func (a *Allocator) incr(ctx context.Context, size int64, want int) (int64, error) {
	if want == 0 {
		end, err := a.rdb.IncrBy(ctx, a.key, size).Result()
		if err != nil {
			return 0, a.incrError(ctx, size, err)
		}
		return end, nil
	}
	// WAIT counts the replicas that acknowledged this connection's writes,
	// so it must follow INCRBY on the same connection: a pipeline on the
	// master that owns the key.
	pipe, err := replicas.Pipeline(ctx, a.rdb, a.key)
	if err != nil {
		a.reloadCluster(ctx)
		return 0, fmt.Errorf("serial: find master of key %q: %w", a.key, err)
	}
	incr := pipe.IncrBy(ctx, a.key, size)
	wait := pipe.Do(ctx, "wait", want, a.opts.ReplicaTimeout.Milliseconds())
	_, _ = pipe.Exec(ctx) // errors are per command, read below
	end, err := incr.Result()
	if err != nil {
		return 0, a.incrError(ctx, size, err)
	}
	acked, err := wait.Int64()
	if err != nil {
		a.reloadCluster(ctx) // e.g. "WAIT cannot be used with replica instances"
		return 0, fmt.Errorf("serial: WAIT %d after INCRBY %q: %w", want, a.key, err)
	}
	a.policy.Saw(int(acked))
	if acked < int64(want) {
		block := fmt.Sprintf("block (%d, %d] of key %q", end-size, end, a.key)
		return 0, replicas.NewError(ErrNotReplicated, block, want, int(acked), a.opts.ReplicaTimeout, nil)
	}
	return end, nil
}

// reloadCluster asks a cluster client to refresh its slot map: a pipeline
// on one node does not follow MOVED or notice a failover by itself.
func (a *Allocator) reloadCluster(ctx context.Context) {
	if cc, ok := a.rdb.(*redis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
}

// incrError classifies an INCRBY failure by the server's reply. Any other
// failure may come from a topology change, which a cluster client is asked
// to look at again.
func (a *Allocator) incrError(ctx context.Context, size int64, err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		switch incrby.Refused(rerr.Error()) {
		case incrby.Overflow:
			return fmt.Errorf("%w: key %q, INCRBY %d: %w", ErrOverflow, a.key, size, err)
		case incrby.NotInteger, incrby.WrongType:
			return fmt.Errorf("%w: key %q: %w", ErrNotInteger, a.key, err)
		}
	}
	a.reloadCluster(ctx)
	return fmt.Errorf("serial: fetch block of %d from key %q: %w", size, a.key, err)
}
