package engine_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/engine/window"
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/queue"
)

// failoverLoad runs two engines, each with its own client from newClient,
// under load (counters over 1,000 keys, and a windowed counter with a
// rollup in each engine) while failover(i) is called for i = 0..n-1. After
// the load it closes the engines, which must write everything, and checks
// every counter exact and every window published once with its exact
// total, reading through check.
func failoverLoad(t *testing.T, newClient func() redis.UniversalClient, check redis.UniversalClient, n int, failover func(i int)) {
	ns := redistest.Prefix(t)
	ctx := context.Background()
	q, err := queue.New(check, "windows", queue.Options{Prefix: ns})
	if err != nil {
		t.Fatal(err)
	}
	var engines []*engine.Engine
	var windows []*window.Counter
	var rollups []*window.Rollup
	for range 2 {
		e, err := engine.New(newClient(), engine.Options{Namespace: ns, FlushInterval: 20 * time.Millisecond, OnError: func(err error) {
			if errors.Is(err, flush.ErrRegressed) || errors.Is(err, flush.ErrRecordLost) {
				t.Logf("%s: %v", time.Now().Format("15:04:05.000"), err)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		engines = append(engines, e)
		w, err := window.New(e, "pv", window.Options{Size: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		windows = append(windows, w)
		// Grace covers a flush held up by a failover: a window finalized
		// before its last deltas arrive would publish a short total.
		r, err := window.StartRollup(ctx, e, q, window.RollupOptions{Interval: 50 * time.Millisecond, Grace: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		rollups = append(rollups, r)
	}
	stop := make(chan struct{})
	var counted atomic.Int64
	var want map[string]int64
	perWindow := make(map[int64]int64) // window start (ms) → count
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		want = hammerDeltas(engines, 4, 1000, 1<<40, 1, stop, &counted)
	}()
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			now := time.Now()
			windows[i%2].AddAt(now, 1)
			perWindow[now.UnixMilli()-now.UnixMilli()%1000]++
		}
	}()
	for i := range n {
		before := counted.Load()
		redistest.WaitFor(t, "load before the failover", func() bool { return counted.Load() > before+10_000 })
		t.Logf("%s: failover %d", time.Now().Format("15:04:05.000"), i+1)
		failover(i)
		t.Logf("%s: failover %d done; %d adds so far", time.Now().Format("15:04:05.000"), i+1, counted.Load())
	}
	before := counted.Load()
	redistest.WaitFor(t, "load after the last failover", func() bool { return counted.Load() > before+10_000 })
	close(stop)
	wg.Wait()
	for _, r := range rollups {
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range engines {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := e.Close(cctx)
		cancel()
		if err != nil {
			t.Fatalf("engine %d: Close: %v", i, err)
		}
		st := e.Stats()
		t.Logf("engine %d: %d batches resent, %d unreplicated, %d regressions (delta %d), %d lost",
			i, st.Resent, st.Unreplicated, st.Regressions, st.RegressedDelta, st.LostBatches)
		if st.Regressions != 0 || st.LostBatches != 0 {
			t.Errorf("engine %d lost acknowledged batches: %+v", i, st)
		}
	}
	checkTotals(t, check, ns, want)

	// Every window is published with its exact total (a second copy,
	// under the same ID, only where a push's reply was lost). The rollups
	// were closed: finish with a new one.
	e, err := engine.New(newClient(), engine.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	r, err := window.StartRollup(ctx, e, q, window.RollupOptions{Interval: 50 * time.Millisecond, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	seen := map[int64]bool{}
	var recs []window.Record
	redistest.WaitFor(t, "every window published", func() bool {
		recs = published(t, check, q)
		clear(seen)
		for _, rec := range recs {
			seen[rec.StartMS] = true
		}
		return len(seen) >= len(perWindow)
	})
	for _, rec := range recs {
		if rec.Total != perWindow[rec.StartMS] {
			inRedis, _ := check.Get(ctx, windows[0].Key(time.UnixMilli(rec.StartMS))).Int64()
			t.Errorf("window %d published with total %d; want %d (%d in Redis)", rec.StartMS, rec.Total, perWindow[rec.StartMS], inRedis)
		}
	}
	t.Logf("%d adds to %d keys and %d windows, exact through %d failovers", counted.Load(), len(want), len(perWindow), n)
}

// TestSentinelFailoversLoseNothing: exactly-once counters and windows
// through three failovers of a Sentinel group (1 master, 1 replica):
// manual, master killed, manual.
func TestSentinelFailoversLoseNothing(t *testing.T) {
	g := redistest.StartSentinel(t, redistest.SentinelOptions{})
	failoverLoad(t, func() redis.UniversalClient { return g.Client(t) }, g.Client(t), 3, func(i int) {
		if i == 1 {
			g.KillMaster(t)
		} else {
			g.Failover(t)
		}
	})
}

// TestClusterFailoversLoseNothing: the same on a Cluster of three masters
// with a replica each, through a manual failover, a killed master and
// another manual failover, each of another slot range.
func TestClusterFailoversLoseNothing(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Replicas: 1})
	failoverLoad(t, func() redis.UniversalClient { return c.Client(t) }, c.Client(t), 3, func(i int) {
		if i == 1 {
			c.KillMaster(t, i)
		} else {
			c.Failover(t, i)
		}
	})
}

// published reads every window record on q's ready list without taking
// them.
func published(t *testing.T, rdb redis.UniversalClient, q *queue.Queue) []window.Record {
	t.Helper()
	raw, err := rdb.LRange(context.Background(), q.Keys().Ready, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var recs []window.Record
	for _, m := range raw {
		_, body, err := queue.Decode([]byte(m))
		if err != nil {
			t.Fatal(err)
		}
		r, err := window.ParseRecord(body)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}
