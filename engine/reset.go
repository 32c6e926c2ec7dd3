package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/script"
)

// resetScript zeroes a counter once per reset token. KEYS[1] is the
// counter, KEYS[2] the token's marker (in the same slot); ARGV[1] is how
// long the marker is kept, in ms. It returns 1 when it reset the counter,
// 0 when this token already had (a resent call). A marker per token,
// rather than one per counter holding the last token, keeps a resent call
// a no-op even when another reset ran in between.
var resetScript = redis.NewScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// resetMarkerTTL is how long a reset's marker stays in Redis: far longer
// than a Reset call keeps resending it (resetResendFor), yet short enough
// that counters reset every second leave only thousands of markers.
const resetMarkerTTL = time.Hour

// resetResendFor bounds how long after its first attempt a Reset call
// sends its reset again: well within resetMarkerTTL, so that a resend
// (arriving at most a client timeout after it left) always finds the
// marker of an earlier attempt that reset the counter, and never resets
// it a second time.
const resetResendFor = resetMarkerTTL / 6

// ErrResetUnknown is wrapped by the error of a Reset whose outcome this
// process cannot know: an attempt's reply was lost, and no later attempt
// got Redis' answer to the call (ctx ended, resetResendFor passed, or
// Redis refused a resend). The counter was reset once or not at all.
var ErrResetUnknown = errors.New("engine: outcome of the reset unknown")

// Reset zeroes the counter named name in Redis: everything that reached
// Redis before the reset is gone, and everything that reaches it after
// counts. This process first writes what it holds for the name (so its
// own earlier Adds are among what the reset removes), then resets; the
// deltas other processes added before the reset but write after it count
// after it, as do Adds that race with Reset in any process.
//
// A call resets once, however often its command is resent: when a reply
// is lost (a cut connection, a timeout) Reset sends the same reset again,
// under a token of its own that Redis remembers for an hour, until Redis
// answers, ctx ends, or 10 minutes have passed since the first attempt
// (far less than the hour Redis remembers the token, so that a resend
// never finds it forgotten and resets again); go-redis' own retries are
// harmless the same way. So:
//   - nil: the counter was reset, once;
//   - an error wrapping ErrResetUnknown: an attempt got no reply and no
//     later one was answered, or Redis refused a later one (the error
//     wraps the last attempt's, and ctx.Err() if ctx ended): reset once
//     or not at all;
//   - any other error (the flush failed, ctx had ended before the first
//     attempt, Redis refused the first attempt): not reset, unless
//     go-redis itself resent an attempt whose reply it lost and Redis
//     refused the resend (see redis.Options.MaxRetries).
//
// In every case a second call is a second reset.
func (e *Engine) Reset(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if e.state.Load() != open {
		return ErrClosed
	}
	if err := e.flusher.Flush(ctx); err != nil {
		return fmt.Errorf("engine: reset %q: flush what this process holds first: %w", name, err)
	}
	var b [16]byte
	rand.Read(b[:])
	if err := e.reset(ctx, name, hex.EncodeToString(b[:])); err != nil {
		return fmt.Errorf("engine: reset %q: %w", name, err)
	}
	e.mu.Lock()
	delete(e.cache, name) // the cached Redis value predates the reset
	e.epoch++             // and so does any read in flight: it must not cache what it gets
	e.mu.Unlock()
	return nil
}

// reset runs resetScript for token until Redis answers it, ctx ends, or
// resetResendFor has passed, backing off between attempts. Redis' answer
// is the same whether this attempt or an earlier one with token reset the
// counter.
func (e *Engine) reset(ctx context.Context, name, token string) error {
	key := e.Key(name)
	keys := []string{key, e.resetMarker(key, name, token)}
	if err := ctx.Err(); err != nil {
		return err // no attempt left
	}
	giveUp := time.Now().Add(resetResendFor)
	inDoubt := false // an attempt got no reply
	for backoff := 10 * time.Millisecond; ; {
		cmd, _ := script.Run(ctx, e.rdb, resetScript, keys, resetMarkerTTL.Milliseconds())
		err := cmd.Err()
		var refused redis.Error
		switch {
		case err == nil:
			return nil // reset now, or by an attempt whose reply was lost
		case errors.As(err, &refused) && !inDoubt:
			return err // refused the first attempt: nothing reset
		case errors.As(err, &refused):
			// An attempt whose reply was lost may have reset the counter
			// before Redis refused this one.
			return fmt.Errorf("%w: an attempt's reply was lost, and Redis refused a resend: %w", ErrResetUnknown, err)
		}
		// No reply: the attempt may or may not have reached Redis.
		inDoubt = true
		if time.Now().After(giveUp) {
			return fmt.Errorf("%w: no reply to resends for %v: %w", ErrResetUnknown, resetResendFor, err)
		}
		if !sleepBackoff(ctx, &backoff) {
			return fmt.Errorf("%w: %w", ErrResetUnknown, errors.Join(err, ctx.Err()))
		}
	}
}

// Reset zeroes the counter; see Engine.Reset.
func (c *Counter) Reset(ctx context.Context) error { return c.e.Reset(ctx, c.c.Name()) }

// resetMarker names the key that records a reset token of the counter
// named name: in the counter key's hash slot (see inSlotOf), so that the
// reset is one script on Redis Cluster too.
func (e *Engine) resetMarker(key, name, token string) string {
	return e.inSlotOf(key) + "reset:" + name + ":" + token
}
