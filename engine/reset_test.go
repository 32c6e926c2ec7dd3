package engine_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
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
