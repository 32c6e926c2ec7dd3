package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/internal/spell"
	"github.com/abacus-go/abacus/lease"
)

// drainLease is the name of the lease that makes one Drain call at a time
// the queue's owner.
const drainLease = "drain"

// Drain processes the queue exclusively and in order: it waits (until ctx
// ends) for the queue's Drain lease, then hands messages to h one at a
// time, oldest first, until the ready list is empty, and returns nil after
// releasing the lease. At most one Drain call runs at a time across all
// processes.
//
// Every move and acknowledgement is a Lua script that checks, in the same
// atomic step, that the caller's token still holds the lease and that its
// fencing number is the latest: a Drain owner that was paused past its
// lease and replaced cannot move or acknowledge anything; its next step
// returns an error wrapping ErrFenced. A message the previous owner was
// handling when it died is delivered first (again: at least once). A
// failed message is retried in place, keeping order, up to
// Options.MaxAttempts, then dead-lettered. Message.Fence carries the
// lease's fencing number for downstream writes.
//
// Drain returns an error wrapping ctx.Err() if ctx ends, or the lease's
// cause (lease.ErrLost, lease.ErrExpired) if it is lost. Consume and Drain
// may run on one queue at the same time, but then messages taken by
// Consume are not in Drain's order.
func (q *Queue) Drain(ctx context.Context, h Handler) error {
	if h == nil {
		return invalid.New(ErrInvalid, "handler", nil, "must not be nil")
	}
	l, err := lease.Acquire(ctx, q.rdb, drainLease, q.opts.LeaseTTL, q.leaseOptions(0))
	if err != nil {
		return fmt.Errorf("queue %q: drain: %w", q.name, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.opts.LeaseTTL)
		_ = l.Release(rctx)
		cancel()
	}()
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(l.Context(), func() { cancel(context.Cause(l.Context())) })
	defer stop()

	d := q.newDrainer(l)
	for {
		raw, failures, err := d.take(wctx)
		switch {
		case err != nil:
			return err
		case raw == nil:
			return nil
		}
		m := Message{Attempt: failures + 1, Fence: l.Fence()}
		op := q.deliver(wctx, h, raw, &m)
		if op == "r" {
			// ctx ended or the lease was lost while handling: the message
			// stays at the tail of the drain list for the next owner.
			return fmt.Errorf("queue %q: drain: %w", q.name, context.Cause(wctx))
		}
		if err := d.settle(wctx, op, raw, failures); err != nil {
			return err
		}
		if op == "n" {
			// Retried in place: back off so that a failing downstream does
			// not use up every attempt in a few milliseconds.
			sleep(wctx, min(time.Duration(m.Attempt)*10*time.Millisecond, time.Second))
		}
	}
}

type drainer struct {
	q        *Queue
	l        *lease.Lease
	fence    string
	keys     []string    // lease, fence, ready, drain, attempts
	failures spell.Spell // transport errors in a row (see retry)
}

// newDrainer returns the Drain owner holding lease l.
func (q *Queue) newDrainer(l *lease.Lease) *drainer {
	d := &drainer{q: q, l: l, fence: strconv.FormatInt(l.Fence(), 10), failures: spell.New(q.log, "drain failing; backing off", "drain recovered")}
	// The scripts check the fence counter of l, which only package lease
	// can name.
	_, fenceKey := lease.Keys(q.keys.LeasePrefix, drainLease)
	d.keys = []string{l.Key(), fenceKey, q.keys.Ready, q.keys.Drain, q.keys.Attempts}
	return d
}

// take returns the next message, or nil when the queue is empty. With
// replicas wanted, WAIT follows the take in the same round trip, and a
// shortfall is retried like a transport error: the message is not handled
// until a master shows it has the replicas (a demoted one cannot).
func (d *drainer) take(ctx context.Context) ([]byte, int, error) {
	var res []any
	err := d.retry(ctx, "take", func() error {
		want := d.q.want(ctx)
		if want == 0 {
			var err error
			res, err = run(ctx, d.q.rdb, drainTakeScript, d.keys, d.l.Token(), d.fence).Slice()
			return err
		}
		cmd, acked, err := d.q.runWait(ctx, want, drainTakeScript, d.keys, d.l.Token(), d.fence)
		if err == nil {
			res, err = cmd.Slice()
		}
		if err == nil && acked < want {
			err = d.q.notReplicated("drain take from", want, acked)
		}
		return err
	})
	if err != nil || len(res) < 2 {
		return nil, 0, err
	}
	s, _ := res[0].(string)
	n, _ := res[1].(int64)
	return []byte(s), int(n), nil
}

// settle acks, nacks or dead-letters the message take returned as raw
// with failures earlier failed deliveries. The failure count makes a
// repeated nack recognisable: it is counted once.
func (d *drainer) settle(ctx context.Context, op string, raw []byte, failures int) error {
	keys := []string{d.keys[0], d.keys[1], d.q.keys.Drain, d.q.keys.Dead, d.q.keys.Attempts}
	return d.retry(ctx, "settle", func() error {
		return run(ctx, d.q.rdb, drainSettleScript, keys, d.l.Token(), d.fence, d.q.opts.MaxAttempts, op, ref(raw), failures).Err()
	})
}

// retry runs f until it succeeds, is fenced off, or ctx ends; transport
// errors are reported and retried with backoff. The scripts are idempotent
// for the lease holder: a repeated take returns the same message, and a
// repeated settle finds the message gone or, for a nack, its failure
// already counted.
func (d *drainer) retry(ctx context.Context, what string, f func() error) error {
	backoff := time.Millisecond
	for {
		err := f()
		switch {
		case err == nil:
			d.failures.OK()
			return nil
		case redis.HasErrorPrefix(err, "FENCED"):
			d.q.log(slog.LevelWarn, "drain owner fenced off; stopping", "fence", d.fence, "step", what)
			return fmt.Errorf("queue %q: drain %s (fence %s): %w", d.q.name, what, d.fence, ErrFenced)
		case ctx.Err() != nil:
			return fmt.Errorf("queue %q: drain %s: %w", d.q.name, what, context.Cause(ctx))
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("queue %q: drain %s: %w", d.q.name, what, err)
		}
		err = fmt.Errorf("queue %q: drain %s: %w", d.q.name, what, err)
		d.q.report(err)
		d.failures.Fail(err, backoff)
		sleep(ctx, backoff)
		backoff = min(2*backoff, time.Second)
	}
}
