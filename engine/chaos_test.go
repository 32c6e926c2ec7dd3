package engine_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestChaosExactlyOnce runs 4 engines × 8 goroutines over 10,000 keys
// through a proxy that cuts connections, drops replies after delivering
// requests, stalls replies past the read timeout and refuses connections,
// every 20–50ms for 10 s (under the race detector, which slows the client
// about fivefold, every timeout and interval is scaled by slowdown). Exactly-once must end exact. The at-least-once
// mode runs the same load with positive deltas: no key may end below its
// true total (nothing lost), and the test records how much it double
// counted.
func TestChaosExactlyOnce(t *testing.T) {
	for _, tc := range []struct {
		mode  flush.Mode
		exact bool
	}{
		{flush.ExactlyOnce, true},
		{flush.AtLeastOnce, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{})
			direct := srv.Client(t)
			ns := redistest.Prefix(t)
			proxy := faultproxy.New(t, srv.Addr)
			var engines []*engine.Engine
			for i := range 4 {
				// Half the clients retry pipelines themselves (go-redis's
				// default), half leave every retry to the flusher.
				retries := 2
				if i%2 == 1 {
					retries = -1
				}
				c := redis.NewClient(&redis.Options{
					Addr:               proxy.Addr(),
					DialTimeout:        slowdown * 100 * time.Millisecond,
					ReadTimeout:        slowdown * 100 * time.Millisecond,
					WriteTimeout:       slowdown * 100 * time.Millisecond,
					DialerRetries:      1,
					DialerRetryTimeout: 10 * time.Millisecond,
					// go-redis retries pipelines after timeouts: harmless
					// to exactly-once, a source of doubles for plain INCRBY.
					MaxRetries:      retries,
					MinRetryBackoff: time.Millisecond,
					MaxRetryBackoff: 10 * time.Millisecond,
				})
				t.Cleanup(func() { c.Close() })
				engines = append(engines, newEngine(t, c, engine.Options{
					Namespace: ns, Delivery: tc.mode,
					FlushInterval: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
					FlushTimeout: slowdown * time.Second,
				}))
			}
			d := 10 * time.Second
			if testing.Short() {
				d = 2 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			chaosDone := make(chan struct{})
			go func() {
				defer close(chaosDone)
				injectFaults(ctx, proxy, rand.New(rand.NewPCG(1, 2)))
			}()
			minDelta := int64(-50)
			if !tc.exact {
				minDelta = 1
			}
			want := hammerDeltas(engines, 8, 10000, 1<<40, minDelta, ctx.Done(), nil)
			want["doubt"] = 1
			<-chaosDone
			proxy.StallReplies(0)
			// Random faults may miss the flushes on a loaded machine, so
			// end with one that cannot: a batch applied in Redis whose
			// reply is held past the read timeout, on a client that does
			// not retry, then sent again.
			forceDoubt(t, engines[1], proxy)

			var resent, dups, flushes, failed uint64
			for _, e := range engines {
				st := e.Stats()
				flushes += st.Flushes
				failed += st.FailedFlushes
				closeOrFail(t, e)
				st = e.Stats()
				resent += st.Resent
				dups += st.Duplicates
			}
			t.Logf("during chaos: %d flushes, %d failed", flushes, failed)
			ps := proxy.Stats()
			t.Logf("faults: %d cut-alls, %d dropped replies, %d stalls, %d refusals; batches resent %d, duplicates recognised %d",
				ps.CutAlls, ps.DroppedReplies, ps.Stalls, ps.Refuses, resent, dups)
			if ps.CutAlls+ps.DroppedReplies+ps.Stalls == 0 {
				t.Fatal("the proxy injected no fault")
			}
			if tc.exact {
				if resent+dups == 0 {
					t.Fatal("no batch was ever in doubt: the faults missed the flushes")
				}
				checkTotals(t, direct, ns, want)
				return
			}
			over, short := compareTotals(t, direct, ns, want)
			t.Logf("at-least-once: %d keys over-counted, by %d in all", over.keys, over.sum)
			if short.keys > 0 {
				t.Fatalf("at-least-once lost deltas: %d keys below their total, by %d in all", short.keys, -short.sum)
			}
		})
	}
}

// forceDoubt makes e flush a batch whose reply is stalled past the read
// timeout, so its outcome is unknown, then flush again once replies flow.
func forceDoubt(t *testing.T, e *engine.Engine, p *faultproxy.Proxy) {
	t.Helper()
	e.Add("doubt", 1)
	p.StallReplies(slowdown * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), slowdown*2*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err == nil {
		t.Fatal("Flush with replies stalled past the read timeout succeeded")
	}
	p.StallReplies(0)
	time.Sleep(slowdown * time.Second) // let the held replies drain
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("Flush after the stall: %v", err)
	}
}

// injectFaults hits the proxy every 20–50ms until ctx ends with a cut of
// every connection, a reply dropped after its request reached Redis, a
// stall of replies past the clients' read timeout, or refused
// connections. Stalls and refusals are kept short enough not to overlap,
// so that flushes can get through between faults and meet the next one.
func injectFaults(ctx context.Context, p *faultproxy.Proxy, r *rand.Rand) {
	for {
		select {
		case <-ctx.Done():
			p.Refuse(false)
			return
		case <-time.After(slowdown * (20*time.Millisecond + time.Duration(r.Int64N(int64(30*time.Millisecond))))):
		}
		p.Refuse(false)
		// A stall outlasts the mean gap between faults, so stalls are
		// kept rare: at one in ten the proxy holds replies about a third
		// of the time.
		switch n := r.IntN(20); {
		case n < 9:
			p.CutAll()
		case n < 16:
			p.DropNextReply()
		case n < 18:
			p.StallReplies(slowdown * 130 * time.Millisecond)
		default:
			p.Refuse(true) // until the next fault
		}
	}
}

type discrepancy struct {
	keys int
	sum  int64
}

// compareTotals counts the keys above and below their expected totals.
func compareTotals(t *testing.T, rdb redis.UniversalClient, ns string, want map[string]int64) (over, under discrepancy) {
	t.Helper()
	ctx := context.Background()
	for name, w := range want {
		got, err := rdb.Get(ctx, ns+name).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("GET %s: %v", name, err)
		}
		switch {
		case got > w:
			over.keys++
			over.sum += got - w
		case got < w:
			under.keys++
			under.sum += got - w
		}
	}
	return over, under
}
