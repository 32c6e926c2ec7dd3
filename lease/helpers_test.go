package lease

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// roundTrips is a go-redis hook counting round trips: one per command sent
// alone, one per pipeline. scripts counts EVAL and EVALSHA commands alone.
type roundTrips struct{ n, scripts atomic.Int64 }

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.scripts.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*roundTrips)(nil)

// inBubble runs f in a synctest bubble, where time is fake and moves
// only when every goroutine of the bubble is blocked, with a client of its
// own on the test Redis: for tests of deadlines that must not wait for
// them. Network I/O is real; Redis' own clock is not faked.
func inBubble(t *testing.T, f func(t *testing.T, rdb *redis.Client)) {
	addr := redistest.Client(t).Options().Addr
	synctest.Test(t, func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		f(t, rdb)
	})
}

// mustAcquire is TryAcquire that fails the test on error.
func mustAcquire(t testing.TB, rdb redis.UniversalClient, name string, ttl time.Duration, o Options) *Lease {
	t.Helper()
	l, err := TryAcquire(context.Background(), rdb, name, ttl, o)
	if err != nil {
		t.Fatalf("TryAcquire(%q, %v) = %v; want a lease", name, ttl, err)
	}
	return l
}

// wantErr fails the test unless errors.Is(err, want).
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v; want an error wrapping %v", what, err, want)
	}
}

// until polls cond until it holds, failing after a generous limit that only
// a hung test reaches: it guards progress, not speed.
func until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for limit := time.Now().Add(30 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(limit) {
			t.Fatalf("still waiting for %s", what)
		}
	}
}

// sibling returns a new client, with its own connection pool, for the
// server c talks to; it is closed when the test ends. (Reusing c.Options()
// itself would share go-redis internals between the two clients.)
func sibling(t testing.TB, c *redis.Client) *redis.Client {
	t.Helper()
	o := c.Options()
	s := redis.NewClient(&redis.Options{Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB})
	t.Cleanup(func() { s.Close() })
	return s
}
