package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestResetWhileOthersAdd: one engine resets a counter while three
// others keep adding to it. As documented, what the resetting engine
// added before is gone, nothing is counted twice, and everything added
// after Reset returned counts: the final value lies between those bounds.
func TestResetWhileOthersAdd(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ns := redistest.Prefix(t)
	ctx := context.Background()
	var engines []*engine.Engine
	for range 4 {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rdb.Close() })
		engines = append(engines, newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: 5 * time.Millisecond}))
	}
	resetter := engines[0]
	c, err := resetter.Counter("c")
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		c.Inc() // removed by the reset: added before it, by the resetter
	}
	var added atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, e := range engines[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				e.Add("c", 1)
				added.Add(1)
			}
		}()
	}
	redistest.WaitFor(t, "adds before the reset", func() bool { return added.Load() > 50_000 })
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	afterReset := added.Load()
	redistest.WaitFor(t, "adds after the reset", func() bool { return added.Load() > afterReset+50_000 })
	close(stop)
	wg.Wait()
	for i, e := range engines {
		if err := e.Close(ctx); err != nil {
			t.Fatalf("engine %d: Close: %v", i, err)
		}
	}
	total := added.Load()
	got, err := srv.Client(t).Get(ctx, ns+"c").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if got < total-afterReset || got > total {
		t.Fatalf("after the reset Redis holds %d; want between %d (added after Reset returned) and %d (all the others added)",
			got, total-afterReset, total)
	}
	t.Logf("others added %d, %d of them after Reset returned; Redis holds %d", total, total-afterReset, got)
}

// TestResetResentAfterLostReplyResetsOnce: the reset script's reply is
// held past the client's read timeout, so Reset sends the same reset
// again; meanwhile another process writes to the counter. The resend must
// find its token's marker and leave that write alone: one call, one reset.
func TestResetResentAfterLostReplyResetsOnce(t *testing.T) {
	ctx := context.Background()
	proxy, direct, ns, done := resetWithLostReply(t, ctx, 3*time.Second)
	if err := direct.IncrBy(ctx, ns+"c", 7).Err(); err != nil {
		t.Fatal(err)
	}
	proxy.Blackhole(false)
	if err := <-done; err != nil {
		t.Fatalf("Reset after a lost reply = %v; want nil (resent until Redis answered)", err)
	}
	if got, err := direct.Get(ctx, ns+"c").Int64(); err != nil || got != 7 {
		t.Fatalf("counter after the reset and a write = %d, %v; want 7: the resend must not reset again", got, err)
	}
	markers, err := direct.Keys(ctx, "*"+ns+"reset:c:*").Result()
	if err != nil || len(markers) != 1 {
		t.Fatalf("reset markers = %v, %v; want one, for the call's token", markers, err)
	}
	if ttl := direct.PTTL(ctx, markers[0]).Val(); ttl <= 0 {
		t.Errorf("marker PTTL = %v; want it to expire", ttl)
	}
}

// resetWithLostReply starts a Reset of the counter "c" (holding 100) of
// an engine reaching Redis through a proxy, whose first attempt Redis
// applies while its reply is held. It returns once Redis has reset the
// counter, with the proxy a black hole: resends wait there, their replies
// lost too (unless they left already and found the marker), until the
// caller opens it. It returns the proxy, a client straight to Redis, the
// engine's namespace, and the Reset's result to come. readTimeout is the
// engine client's: the longer, the likelier the black hole is closed
// before the first resend leaves, busy machine or not.
func resetWithLostReply(t *testing.T, ctx context.Context, readTimeout time.Duration) (*faultproxy.Proxy, *redis.Client, string, <-chan error) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	proxy := faultproxy.New(t, srv.Addr)
	// No go-redis retries: Reset's own resend is what is tested.
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ReadTimeout: readTimeout, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ns := redistest.Prefix(t)
	// No background flush, whose replies the stall would hold too: Reset's
	// own flush, with nothing to write, sends nothing.
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	direct := srv.Client(t)
	if err := direct.Set(context.Background(), ns+"c", 100, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.Reset(context.Background(), "other"); err != nil { // Redis caches the script
		t.Fatal(err)
	}
	proxy.StallReplies(time.Hour)
	done := make(chan error, 1)
	go func() { done <- e.Reset(ctx, "c") }()
	redistest.WaitFor(t, "the reset applied in Redis", func() bool {
		n, err := direct.Exists(context.Background(), ns+"c").Result()
		return err == nil && n == 0
	})
	proxy.Blackhole(true)
	proxy.StallReplies(0)
	return proxy, direct, ns, done
}

// TestResetRefusedAfterLostReplyIsUnknown: the reset is applied but its
// reply lost, and Redis refuses the resend (out of memory): the counter
// was reset, so the error must not say nothing was; it wraps
// ErrResetUnknown and Redis' refusal.
func TestResetRefusedAfterLostReplyIsUnknown(t *testing.T) {
	ctx := context.Background()
	proxy, direct, _, done := resetWithLostReply(t, ctx, slowdown*500*time.Millisecond)
	if err := direct.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := direct.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	proxy.Blackhole(false)
	err := <-done
	var refused redis.Error
	if !errors.Is(err, engine.ErrResetUnknown) || !errors.As(err, &refused) || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("Reset refused after a lost reply = %v; want ErrResetUnknown wrapping Redis' OOM refusal", err)
	}
}

// TestResetUnansweredUntilContextEndsIsUnknown: the reset is applied but
// no reply comes back before ctx ends: the error wraps ErrResetUnknown
// and ctx's.
func TestResetUnansweredUntilContextEndsIsUnknown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, _, done := resetWithLostReply(t, ctx, slowdown*500*time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, engine.ErrResetUnknown) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Reset unanswered until ctx ended = %v; want ErrResetUnknown and context.Canceled", err)
	}
}
