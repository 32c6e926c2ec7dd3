package queue

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
)

// Push appends msgs to the queue, each under a new random ID, and returns
// the IDs in order. The messages are sent as LPUSHes of up to
// Options.PushBatch messages, all in one pipeline: one round trip per call,
// with one WAIT at its end when replicas are wanted (see Options.Replicas).
//
// Push returns nil only once the messages are in the queue and, with
// replicas wanted, acknowledged by that many replicas: a failover that
// promotes one of them keeps them. Otherwise it returns the IDs with the
// error, which is a [*ReplicationError] (wrapping ErrNotReplicated) when
// the master took the messages but its replicas did not confirm them in
// time (a replica down or slow, or the master just demoted), or a Redis
// error, saying how many messages are known to be in. Either way the
// messages may or may not be in the queue: retry with
// PushWithIDs(ctx, ids, msgs...), so that a consumer recognises a second
// copy by its ID.
//
// Every body is checked first: if one is over Options.MaxMessageBytes, Push
// returns a [*SizeError] (wrapping ErrTooLarge), no IDs, and pushes
// nothing.
func (q *Queue) Push(ctx context.Context, msgs ...[]byte) ([]ID, error) {
	if err := q.checkSizes(msgs); err != nil || len(msgs) == 0 {
		return nil, err
	}
	ids := make([]ID, len(msgs))
	// One read of the system's randomness for all IDs.
	buf := make([]byte, 16*len(msgs))
	rand.Read(buf)
	for i := range ids {
		copy(ids[i][:], buf[16*i:])
	}
	return ids, q.push(ctx, ids, msgs)
}

// PushWithIDs is Push with IDs chosen by the caller: msgs[i] is pushed
// under ids[i]. It is how a Push that returned an error is retried without
// the copies becoming different messages, and lets a producer derive IDs
// from its own keys. It returns an [*InvalidError] if the lengths differ,
// and otherwise what Push returns, without the IDs.
func (q *Queue) PushWithIDs(ctx context.Context, ids []ID, msgs ...[]byte) error {
	if len(ids) != len(msgs) {
		return invalid.New(ErrInvalid, "ids", len(ids), fmt.Sprintf("need one ID per message (%d)", len(msgs)))
	}
	if err := q.checkSizes(msgs); err != nil || len(msgs) == 0 {
		return err
	}
	return q.push(ctx, ids, msgs)
}

func (q *Queue) checkSizes(msgs [][]byte) error {
	for i, m := range msgs {
		if len(m) > q.opts.MaxMessageBytes {
			return &SizeError{Index: i, Size: len(m), Limit: q.opts.MaxMessageBytes}
		}
	}
	return nil
}

// push sends the LPUSHes, and WAIT when replicas are wanted.
func (q *Queue) push(ctx context.Context, ids []ID, msgs [][]byte) error {
	want := q.want(ctx)
	var pipe redis.Pipeliner
	if want == 0 {
		pipe = q.rdb.Pipeline() // a cluster pipeline follows redirects
	} else {
		var err error
		if pipe, err = q.pipeline(ctx); err != nil {
			return fmt.Errorf("queue %q: push %d messages (0 known pushed): %w", q.name, len(msgs), err)
		}
	}
	batch := q.opts.PushBatch
	cmds := make([]*redis.IntCmd, 0, (len(msgs)+batch-1)/batch)
	for lo := 0; lo < len(msgs); lo += batch {
		hi := min(lo+batch, len(msgs))
		args := make([]any, hi-lo)
		for i := lo; i < hi; i++ {
			args[i-lo] = Encode(ids[i], msgs[i])
		}
		cmds = append(cmds, pipe.LPush(ctx, q.keys.Ready, args...))
	}
	var acked int
	var err error
	if want == 0 {
		_, err = pipe.Exec(ctx)
	} else {
		acked, err = q.execWait(ctx, pipe, want)
	}
	if err != nil {
		in := 0
		for i, c := range cmds {
			if c.Err() == nil {
				in += min(batch, len(msgs)-i*batch)
			}
		}
		return fmt.Errorf("queue %q: push %d messages (%d known pushed): %w", q.name, len(msgs), in, err)
	}
	if acked < want {
		return q.notReplicated(fmt.Sprintf("push of %d messages to", len(msgs)), want, acked)
	}
	return nil
}
