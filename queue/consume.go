package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/internal/spell"
	"github.com/abacus-go/abacus/lease"
)

// Handler processes one message. Returning nil acknowledges it; an error
// (or a panic, which is recovered) counts a failed delivery: the message
// goes back on the ready list, or to the dead-letter list after
// Options.MaxAttempts failures. ctx ends when the Consume or Drain call's
// context ends or its lease is lost.
type Handler func(ctx context.Context, m Message) error

// errLeaseLost ends one consumer's run when its heartbeat lease is gone;
// Consume then registers a new consumer.
var errLeaseLost = errors.New("queue: consumer lease lost")

// Consume runs Options.Concurrency consumers until ctx ends, then returns
// ctx.Err(). It returns at once with an [*InvalidError] for a nil handler.
//
// Each consumer holds a heartbeat lease (auto-renewed) and moves messages
// from the ready list into its own processing list: up to Options.Prefetch
// per round trip while the queue is busy, one BLMOVE at a time when it is
// idle. Handled messages are acknowledged (removed) in one script per
// batch. Consume also runs the queue's reclaimer whenever it can get the
// reclaimer lease, so the messages of consumers that died are moved back
// to the ready list without anyone having to run a cleaner.
//
// Delivery is at least once: a consumer that dies (or loses its lease)
// after handling a message and before acknowledging it causes a second
// delivery, with the same ID. Redis errors are retried with backoff and
// reported to Options.OnError; they do not end Consume. So is a take the
// replicas did not acknowledge (a [*ReplicationError], see
// Options.Replicas): its messages are not handled until one is.
func (q *Queue) Consume(ctx context.Context, h Handler) error {
	if h == nil {
		return invalid.New(ErrInvalid, "handler", nil, "must not be nil")
	}
	var wg sync.WaitGroup
	wg.Go(func() { q.reclaimLoop(ctx) })
	for range q.opts.Concurrency {
		wg.Go(func() {
			s := spell.New(q.log, "consumer failing; backing off", "consumer recovered")
			for ctx.Err() == nil {
				if err := q.runConsumer(ctx, h, &s); err != nil && ctx.Err() == nil {
					q.report(err)
					s.Fail(err, q.opts.BlockTimeout)
					sleep(ctx, q.opts.BlockTimeout)
				}
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// consumer is one registered consumer: an ID, its lease and its
// processing list.
type consumer struct {
	q          *Queue
	id         string
	l          *lease.Lease
	takeKeys   []string // ready, proc, attempts, lease
	settleKeys []string // proc, ready, dead, attempts
	proc       string
	taken      []Message
	raw        [][]byte // stored form of taken, same order
}

// consumerLease returns the name of the heartbeat lease of the consumer
// with the given ID.
func consumerLease(id string) string { return "consumer:" + id }

// runConsumer registers a new consumer and consumes until ctx ends or its
// lease is lost, then retires it. s is its loop's spell of failures: a
// failed take is one, a take that succeeds ends it.
func (q *Queue) runConsumer(ctx context.Context, h Handler, s *spell.Spell) error {
	id := rand.Text()
	l, err := lease.Acquire(ctx, q.rdb, consumerLease(id), q.opts.LeaseTTL, q.leaseOptions(0))
	if err != nil {
		return fmt.Errorf("queue %q: consumer lease: %w", q.name, err)
	}
	// Registered only once its lease exists: the reclaimer never sees a
	// registered consumer that has not yet had a lease.
	if err := q.rdb.ZAdd(ctx, q.keys.Consumers, redis.Z{Member: id}).Err(); err != nil {
		_ = l.Release(context.WithoutCancel(ctx))
		return fmt.Errorf("queue %q: register consumer: %w", q.name, err)
	}
	c := q.newConsumer(id, l)
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(l.Context(), func() { cancel(errLeaseLost) })
	defer stop()
	defer c.retire(ctx)
	backoff := time.Millisecond
	for {
		if wctx.Err() != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("queue %q: consumer %s: %w", q.name, id, context.Cause(wctx))
		}
		err := c.take(wctx)
		if err == nil && len(c.taken) == 0 {
			var got bool
			if got, err = c.block(wctx); got {
				// Take it (and whatever else came) through take, which
				// confirms the move with the replicas.
				err = c.take(wctx)
			}
		}
		switch {
		case err != nil && redis.HasErrorPrefix(err, "LOST"):
			return fmt.Errorf("queue %q: consumer %s: %w", q.name, id, errLeaseLost)
		case err != nil:
			if wctx.Err() == nil {
				err = fmt.Errorf("queue %q: consumer %s: take: %w", q.name, id, err)
				q.report(err)
				s.Fail(err, backoff)
				sleep(wctx, backoff)
				backoff = min(2*backoff, q.opts.BlockTimeout)
			}
			continue
		}
		s.OK()
		backoff = time.Millisecond
		if len(c.taken) > 0 {
			c.handle(wctx, h)
		}
	}
}

// newConsumer returns the consumer id holding lease l.
func (q *Queue) newConsumer(id string, l *lease.Lease) *consumer {
	c := &consumer{q: q, id: id, l: l, proc: q.keys.Processing(id)}
	c.takeKeys = []string{q.keys.Ready, c.proc, q.keys.Attempts, l.Key()}
	c.settleKeys = []string{c.proc, q.keys.Ready, q.keys.Dead, q.keys.Attempts}
	return c
}

// take moves up to Prefetch messages into the processing list; messages
// already there (left by a take whose reply was lost, a failed settle, or
// block) come first. With replicas wanted, WAIT follows in the same round
// trip, and a shortfall returns a [*ReplicationError] with nothing taken:
// the messages stay in the processing list for the next take (or, on a
// demoted master, are gone with it and ready on the new one).
func (c *consumer) take(ctx context.Context) error {
	c.taken, c.raw = c.taken[:0], c.raw[:0]
	var res []any
	if want := c.q.want(ctx); want == 0 {
		var err error
		if res, err = run(ctx, c.q.rdb, takeScript, c.takeKeys, c.takeArgs(false)...).Slice(); err != nil {
			return err
		}
	} else {
		cmd, acked, err := c.q.runWait(ctx, want, takeScript, c.takeKeys, c.takeArgs(true)...)
		if err == nil {
			res, err = cmd.Slice()
		}
		if err != nil {
			return err
		}
		if acked < want {
			return c.q.notReplicated("take from", want, acked)
		}
	}
	for i := 0; i+1 < len(res); i += 2 {
		s, _ := res[i].(string)
		n, _ := res[i+1].(int64)
		c.add([]byte(s), int(n))
	}
	return nil
}

// takeArgs returns takeScript's arguments; wait says that a WAIT follows
// the script, which must then write whenever it returns something.
func (c *consumer) takeArgs(wait bool) []any {
	w := 0
	if wait {
		w = 1
	}
	return []any{c.l.Token(), c.q.opts.Prefetch, w}
}

// block waits up to BlockTimeout for a message to arrive and moves it into
// the processing list with BLMOVE. It reports whether one came; take then
// hands it out.
func (c *consumer) block(ctx context.Context) (bool, error) {
	var err error
	if d := c.q.opts.BlockTimeout; d < time.Second {
		// go-redis rounds BLMOVE's timeout up to 1s; Redis takes fractional
		// seconds. Below 1s the client's ReadTimeout (3s by default) is
		// longer than the block, so a plain command is safe.
		err = c.q.rdb.Do(ctx, "BLMOVE", c.q.keys.Ready, c.proc, "RIGHT", "LEFT", d.Seconds()).Err()
	} else {
		err = c.q.rdb.BLMove(ctx, c.q.keys.Ready, c.proc, "RIGHT", "LEFT", d).Err()
	}
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

func (c *consumer) add(b []byte, failures int) {
	c.raw = append(c.raw, b)
	c.taken = append(c.taken, Message{Attempt: failures + 1})
}

// handle runs h on every taken message, then settles them all.
func (c *consumer) handle(ctx context.Context, h Handler) {
	ops := make([]string, len(c.taken))
	for i := range c.taken {
		ops[i] = "r"
		if ctx.Err() == nil {
			ops[i] = c.q.deliver(ctx, h, c.raw[i], &c.taken[i])
		}
	}
	// Settle even when ctx ended: the messages are ours until the lease
	// is gone, and acking what was handled saves a redelivery.
	c.settle(context.WithoutCancel(ctx), ops)
}

// settle settles the taken messages in one script, ops[i] saying what
// becomes of the i-th: acknowledged, nacked, returned unhandled (when ctx
// ended first), or dead-lettered (malformed). A failed settle is retried a
// few times while the lease holds; a repeat finds done what was done.
func (c *consumer) settle(ctx context.Context, ops []string) {
	args := c.settleArgs(ops)
	for try := 0; ; try++ {
		err := run(ctx, c.q.rdb, settleScript, c.settleKeys, args...).Err()
		if err == nil {
			return
		}
		c.q.report(fmt.Errorf("queue %q: consumer %s: settle %d messages: %w", c.q.name, c.id, len(c.taken), err))
		if c.l.Err() != nil || try == 5 {
			// Left in the processing list: delivered again by the next
			// take, or by the reclaimer once the lease is gone.
			return
		}
		sleep(c.l.Context(), time.Duration(1<<try)*10*time.Millisecond)
	}
}

// settleArgs returns settleScript's arguments for ops, one per taken
// message. Each message is sent as its ref, not its body (17 bytes however
// large the message), and with its failures so far, so that only one that
// failed before costs a command to forget them.
func (c *consumer) settleArgs(ops []string) []any {
	args := make([]any, 0, 1+3*len(ops))
	args = append(args, c.q.opts.MaxAttempts)
	for i, op := range ops {
		args = append(args, op, ref(c.raw[i]), c.taken[i].Attempt-1)
	}
	return args
}

// deliver decodes raw into m, runs h on it with panics recovered, and
// returns the settle op.
func (q *Queue) deliver(ctx context.Context, h Handler, raw []byte, m *Message) (op string) {
	id, body, err := Decode(raw)
	if err != nil {
		q.report(fmt.Errorf("queue %q: %w; dead-lettered", q.name, err))
		q.log(slog.LevelWarn, "malformed entry dead-lettered", "err", err)
		return "d"
	}
	m.ID, m.Body = id, body
	if err := q.call(ctx, h, *m); err != nil {
		if ctx.Err() != nil {
			return "r" // stopped, not failed: no attempt counted
		}
		return "n"
	}
	return "a"
}

// call runs h, turning a panic into an error wrapping ErrPanic.
func (q *Queue) call(ctx context.Context, h Handler, m Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: message %s: %v\n%s", ErrPanic, m.ID, r, debug.Stack())
			q.report(fmt.Errorf("queue %q: %w", q.name, err))
		}
	}()
	return h(ctx, m)
}

// retire ends the consumer: its lease is released and whatever is left in
// its processing list goes back to the head of the ready list, counting no
// failure. It stays registered (marked dead) for RetireAfter, so that a
// BLMOVE that lands after this is still reclaimed.
func (c *consumer) retire(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.q.opts.LeaseTTL)
	defer cancel()
	_ = c.l.Release(ctx)
	if _, err := c.q.reclaim(ctx, c.id, true); err != nil {
		c.q.report(fmt.Errorf("queue %q: retire consumer %s: %w", c.q.name, c.id, err))
	}
}

func (q *Queue) leaseOptions(maxRetry time.Duration) lease.Options {
	// The leases wait for the queue's replicas: a Drain lease lost in a
	// failover would let a second owner drain alongside the first.
	o := lease.Options{KeyPrefix: q.keys.LeasePrefix, AutoRenew: true,
		Replicas: q.opts.Replicas, ReplicaTimeout: q.opts.ReplicaTimeout, Logger: q.logger}
	if maxRetry > 0 {
		o.MinRetryDelay = min(lease.DefaultMinRetryDelay, maxRetry)
		o.MaxRetryDelay = maxRetry
	}
	return o
}

func (q *Queue) report(err error) {
	if q.opts.OnError != nil {
		q.opts.OnError(err)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
