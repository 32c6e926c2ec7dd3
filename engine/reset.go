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
// than a Reset call keeps resending it, yet short enough that counters
// reset every second leave only thousands of markers.
const resetMarkerTTL = time.Hour

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
// answers or ctx ends, and go-redis' own retries are harmless the same way.
// So a nil error means the counter was reset once; an error means it was
// reset once or not at all (ctx ended, or Redis refused), and a second
// call is a second reset.
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

// reset runs resetScript for token until Redis answers it or ctx ends,
// backing off between attempts. Redis' answer is the same whether this
// attempt or an earlier one with token reset the counter.
func (e *Engine) reset(ctx context.Context, name, token string) error {
	key := e.Key(name)
	keys := []string{key, e.resetMarker(key, name, token)}
	for backoff := 10 * time.Millisecond; ; {
		cmd, _ := script.Run(ctx, e.rdb, resetScript, keys, resetMarkerTTL.Milliseconds())
		err := cmd.Err()
		var reply redis.Error
		if err == nil || errors.As(err, &reply) {
			return err // Redis answered: done, or refused (nothing reset)
		}
		if !sleepBackoff(ctx, &backoff) {
			return errors.Join(err, ctx.Err())
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
