package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/abacus-go/abacus/lease"
)

// reclaimerLease is the name of the lease that makes one Consume call at a
// time the queue's reclaimer.
const reclaimerLease = "reclaimer"

// reclaimLoop runs inside every Consume call: it waits for the reclaimer
// lease and, while holding it, sweeps every ReclaimInterval, until ctx
// ends. Losing the lease sends it back to waiting.
func (q *Queue) reclaimLoop(ctx context.Context) {
	lease.Hold(ctx, q.rdb, reclaimerLease, q.opts.LeaseTTL, q.leaseOptions(q.opts.ReclaimInterval),
		q.reclaimWhileHeld, func(err error) { q.report(fmt.Errorf("queue %q: reclaimer lease: %w", q.name, err)) })
}

// reclaimWhileHeld sweeps every ReclaimInterval until ctx ends: when the
// lease is lost or Consume returns.
func (q *Queue) reclaimWhileHeld(ctx context.Context, l *lease.Lease) {
	t := time.NewTicker(q.opts.ReclaimInterval)
	defer t.Stop()
	for {
		if _, err := q.Reclaim(l.Context()); err != nil && l.Err() == nil {
			q.report(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reclaim makes one sweep over the registered consumers: the messages of
// every consumer whose heartbeat lease is gone go back to the head of the
// ready list (each counting a failed delivery, so a message that keeps
// killing its consumers ends in the dead-letter list), and consumers dead
// for longer than Options.RetireAfter are unregistered. It returns the
// number of messages moved.
//
// Consume runs it in the background on one process at a time; calling it
// directly is safe at any time (each consumer is swept by one atomic
// script), e.g. from an operator tool.
func (q *Queue) Reclaim(ctx context.Context) (int, error) {
	ids, err := q.rdb.ZRange(ctx, q.keys.Consumers, 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("queue %q: reclaim: list consumers: %w", q.name, err)
	}
	total := 0
	var errs []error
	for _, id := range ids {
		n, err := q.reclaim(ctx, id, false)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return total, fmt.Errorf("queue %q: reclaim: %w", q.name, err)
	}
	return total, nil
}

// reclaim runs reclaimScript for one consumer; graceful when the consumer
// is retiring itself. It returns the messages moved (0 when alive).
func (q *Queue) reclaim(ctx context.Context, id string, graceful bool) (int, error) {
	// The script checks the consumer's lease and, retiring the consumer,
	// deletes the lease's fence counter: lease.Keys names both.
	leaseKey, fenceKey := lease.Keys(q.keys.LeasePrefix, consumerLease(id))
	keys := []string{q.keys.Consumers, q.keys.Processing(id), leaseKey, fenceKey, q.keys.Ready, q.keys.Dead, q.keys.Attempts}
	g := 0
	if graceful {
		g = 1
	}
	n, err := run(ctx, q.rdb, reclaimScript, keys, id, q.opts.RetireAfter.Milliseconds(), q.opts.MaxAttempts, g).Int()
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", id, err)
	}
	if n > 0 && !graceful {
		q.log(slog.LevelWarn, "dead consumer's messages reclaimed", "consumer", id, "messages", n)
	}
	return max(n, 0), nil
}
