package serial

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// startFetchLocked starts fetching a block of a.size in the background and
// returns the call; the caller has checked that none is in flight. The fetch
// does not run under a caller's context because its block belongs to every
// caller: one caller giving up must not waste it. The client's timeouts
// bound it.
func (a *Allocator) startFetchLocked() *fetchCall {
	c := &fetchCall{done: make(chan struct{}), gen: a.gen, size: a.size}
	a.inflight = c
	go a.fetch(c)
	return c
}

// fetch leases one block and publishes it as a.ready, or records why not.
func (a *Allocator) fetch(c *fetchCall) {
	end, err := a.incr(context.Background(), c.size)
	a.mu.Lock()
	defer close(c.done)
	defer a.mu.Unlock()
	a.inflight = nil
	a.stats.roundTrips++
	switch {
	case a.err != nil: // closed, or a regression seen meanwhile
		c.err = a.err
		return
	case c.gen != a.gen:
		return // requested before Resume; waiters retry with a fresh fetch
	case err != nil:
		a.stats.fetchErrors++
		c.err = err
		return
	}
	base := end - c.size
	// INCRBY replies on one key only ever grow, so a block must start above
	// everything accepted before; anything else means Redis lost writes.
	// HighWater starts at 0, which also refuses blocks reaching zero or
	// negative IDs (a key holding a negative number).
	if base < a.highWater {
		a.stats.regressions++
		rerr := &RegressionError{Key: a.key, End: end, Size: c.size, HighWater: a.highWater}
		a.err = rerr
		a.dropLocked()
		c.err = rerr
		return
	}
	a.highWater = end
	a.stats.blocks++
	a.ready = &block{base: base, size: c.size, trigger: triggerOffset(c.size, a.opts.PrefetchThreshold)}
}

// incr runs INCRBY key size, followed by WAIT on the same connection when
// Options.WaitReplicas asks for it, and returns the INCRBY reply.
func (a *Allocator) incr(ctx context.Context, size int64) (int64, error) {
	if a.opts.WaitReplicas == 0 {
		end, err := a.rdb.IncrBy(ctx, a.key, size).Result()
		if err != nil {
			return 0, a.incrError(size, err)
		}
		return end, nil
	}
	// WAIT counts replicas that acknowledged this connection's writes, so it
	// must follow INCRBY on the same connection: a pipeline on the node that
	// owns the key (a cluster pipeline would send the keyless WAIT anywhere).
	var pipe redis.Pipeliner
	if cc, ok := a.rdb.(interface {
		MasterForKey(context.Context, string) (*redis.Client, error)
	}); ok {
		node, err := cc.MasterForKey(ctx, a.key)
		if err != nil {
			return 0, fmt.Errorf("serial: find master of key %q: %w", a.key, err)
		}
		pipe = node.Pipeline()
	} else {
		pipe = a.rdb.Pipeline()
	}
	incr := pipe.IncrBy(ctx, a.key, size)
	wait := pipe.Do(ctx, "wait", a.opts.WaitReplicas, a.opts.WaitTimeout.Milliseconds())
	_, _ = pipe.Exec(ctx) // errors are per command, read below
	end, err := incr.Result()
	if err != nil {
		return 0, a.incrError(size, err)
	}
	acked, err := wait.Int64()
	if err != nil {
		return 0, fmt.Errorf("serial: WAIT %d after INCRBY %q: %w", a.opts.WaitReplicas, a.key, err)
	}
	if acked < int64(a.opts.WaitReplicas) {
		return 0, &ReplicationError{Key: a.key, End: end, Want: a.opts.WaitReplicas, Acked: int(acked), Timeout: a.opts.WaitTimeout}
	}
	return end, nil
}

// incrError classifies an INCRBY failure by the server's reply.
func (a *Allocator) incrError(size int64, err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		switch {
		case strings.Contains(msg, "overflow"):
			return fmt.Errorf("%w: key %q, INCRBY %d: %w", ErrOverflow, a.key, size, err)
		case strings.Contains(msg, "not an integer"), strings.HasPrefix(msg, "WRONGTYPE"):
			return fmt.Errorf("%w: key %q: %w", ErrNotInteger, a.key, err)
		}
	}
	return fmt.Errorf("serial: fetch block of %d from key %q: %w", size, a.key, err)
}
