package serial

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/internal/script"
)

// reseedScript raises KEYS[1] to ARGV[1] when it is missing or below it, and
// returns the key's value afterwards as a string. Values are compared as
// decimal strings, not Lua numbers: Lua's doubles are exact only to 2^53.
// A canonical non-negative integer (what INCRBY accepts and writes) is
// smaller than another exactly when it is shorter, or as long and
// lexically smaller. KEEPTTL keeps an expiry the application may have set.
var reseedScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local floor = ARGV[1]
if cur == false then
  redis.call('SET', KEYS[1], floor)
  return floor
end
if not (cur == '0' or string.match(cur, '^-?[1-9]%d*$')) then
  return redis.error_reply('NOTINT serial: key does not hold an integer')
end
if string.sub(cur, 1, 1) == '-' or #cur < #floor or (#cur == #floor and cur < floor) then
  redis.call('SET', KEYS[1], floor, 'KEEPTTL')
  return floor
end
return cur
`)

// Reseed raises the counter at key to floor if it is missing or below it,
// atomically, and returns its value afterwards; a key already at or above
// floor is left alone. After it, every block fetched from key starts above
// floor. It is the recovery from a *RegressionError: pick a floor at or
// above every ID any process issued (the maximum in the system of record,
// or the largest RegressionError.HighWater reported by every allocator),
// Reseed, then call Resume on each allocator. Reseeding is idempotent and
// monotonic, so several processes may each reseed with their own floor.
//
// A negative floor is an *InvalidError; a key holding a non-integer is
// ErrNotInteger.
func Reseed(ctx context.Context, rdb redis.UniversalClient, key string, floor int64) (int64, error) {
	if err := invalid.Client(ErrInvalid, rdb); err != nil {
		return 0, err
	}
	if err := invalid.Name(ErrInvalid, "key", key); err != nil {
		return 0, err
	}
	if floor < 0 {
		return 0, invalid.New(ErrInvalid, "floor", floor, "must not be negative")
	}
	cmd, _ := script.Run(ctx, rdb, reseedScript, []string{key}, strconv.FormatInt(floor, 10))
	s, err := cmd.Text()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) && strings.Contains(rerr.Error(), "NOTINT") {
			return 0, fmt.Errorf("%w: key %q", ErrNotInteger, key)
		}
		return 0, fmt.Errorf("serial: reseed key %q to %d: %w", key, floor, err)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: key %q holds %q", ErrNotInteger, key, s)
	}
	return v, nil
}

// Resume reseeds the key to the larger of floor and the Allocator's own
// HighWater, then clears a *RegressionError so that Next fetches again.
// Blocks held before are dropped; the next block starts above both. Pass
// the highest ID issued by any process as floor (0 when this Allocator is
// the key's only user). A fetch from before Resume that completes after it
// is discarded. Resume on a healthy Allocator only reseeds and drops its
// blocks. After Close it returns ErrClosed.
func (a *Allocator) Resume(ctx context.Context, floor int64) error {
	if floor < 0 {
		return invalid.New(ErrInvalid, "floor", floor, "must not be negative")
	}
	a.mu.Lock()
	err, hw := a.err, a.highWater
	a.mu.Unlock()
	if err == ErrClosed {
		return ErrClosed
	}
	if _, err := Reseed(ctx, a.rdb, a.key, max(floor, hw)); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == ErrClosed {
		return ErrClosed
	}
	if a.err != nil {
		a.log(slog.LevelInfo, "resumed after a regression", "floor", max(floor, hw))
	}
	a.err = nil
	a.gen++
	a.dropLocked()
	a.size = a.opts.MinBlock
	return nil
}
