package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/script"
)

// resetScript zeroes a counter once per reset token. KEYS[1] is the
// counter, KEYS[2] its reset marker (in the same slot); ARGV[1] the token,
// ARGV[2] how long the marker is kept, in ms. It returns 1 when it reset
// the counter, 0 when this token already had (a retried call).
var resetScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) == ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
`)

// resetMarkerTTLMillis is how long a reset's marker stays in Redis: far longer
// than any retry of the call that set it.
const resetMarkerTTLMillis = 24 * 60 * 60 * 1000

// Reset zeroes the counter named name in Redis: everything that reached
// Redis before the reset is gone, and everything that reaches it after
// counts. This process first writes what it holds for the name (so its
// own earlier Adds are among what the reset removes), then resets; the
// deltas other processes added before the reset but write after it count
// after it, as do Adds that race with Reset in any process. A reset is
// applied once per call, however often go-redis retries it; a second call
// is a second reset. On failure nothing is reset, or the reset happened
// and its reply was lost: calling Reset again is safe either way.
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
	key := e.Key(name)
	cmd, _ := script.Run(ctx, e.rdb, resetScript, []string{key, e.resetMarker(key, name)}, hex.EncodeToString(b[:]), resetMarkerTTLMillis)
	if err := cmd.Err(); err != nil {
		return fmt.Errorf("engine: reset %q: %w", name, err)
	}
	e.mu.Lock()
	delete(e.cache, name) // the cached Redis value predates the reset
	e.mu.Unlock()
	return nil
}

// Reset zeroes the counter; see Engine.Reset.
func (c *Counter) Reset(ctx context.Context) error { return c.e.Reset(ctx, c.c.Name()) }

// resetMarker names the key that records the last reset token of the
// counter named name: in the counter key's hash slot (its hash tag is the
// slot's, as for the unique counts' scratch keys), so that the reset is
// one script on Redis Cluster too.
func (e *Engine) resetMarker(key, name string) string {
	return "{" + slotTags()[flush.Slot(key)] + "}" + e.opts.Namespace + "reset:" + name
}
