package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestClusterExactTotals runs the exact-totals load against a real
// 3-master Redis Cluster and restarts one master mid-run: batches are
// grouped per hash slot with a writer record in each slot, and the ones in
// doubt during the restart are resent until the master answers.
func TestClusterExactTotals(t *testing.T) {
	cluster := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, AppendOnly: true})
	check := cluster.Client(t)
	ns := redistest.Prefix(t)
	var engines []*engine.Engine
	for range 4 {
		// Timeouts far above what a flush takes on a loaded machine. A
		// flush of 10,000 keys is some 7,500 per-slot batches, one pipeline
		// per master, and go-redis gives a whole pipeline one write and one
		// read deadline; when those (or FlushTimeout) are shorter than a
		// starved, race-instrumented client needs, every flush times out,
		// and so does every resend of the same batches: the engine never
		// catches up. The restart needs no timeout to be noticed: the
		// master's connections close.
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:        cluster.Addrs(),
			ReadTimeout:  time.Minute,
			WriteTimeout: time.Minute,
		})
		t.Cleanup(func() { c.Close() })
		engines = append(engines, newEngine(t, c, engine.Options{
			Namespace: ns, FlushInterval: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
			FlushTimeout: time.Minute,
		}))
	}
	stop := make(chan struct{})
	result := make(chan map[string]int64)
	go func() { result <- hammer(engines, 8, 10000, 1<<40, stop, nil) }()

	t0 := time.Now()
	dbg := make(chan struct{})
	defer close(dbg)
	go func() {
		for {
			select {
			case <-dbg:
				return
			case <-time.After(2 * time.Second):
			}
			st := engines[0].Stats()
			t.Logf("DBG %v flushes %d failed %d keys %d resent %d pending %d/%d last %v max %v err %v", time.Since(t0).Round(time.Millisecond), st.Flushes, st.FailedFlushes, st.KeysFlushed, st.Resent, st.PendingBatches, st.PendingKeys, st.LastFlushDuration, st.MaxFlushDuration, st.LastError)
		}
	}()
	redistest.WaitFor(t, "flushes before the restart", func() bool { return engines[0].Stats().KeysFlushed > 10000 })
	t.Logf("DBG %v before restart", time.Since(t0))
	cluster.RestartNode(1)
	t.Logf("DBG %v restarted", time.Since(t0))
	before := engines[0].Stats().KeysFlushed
	redistest.WaitFor(t, "flushes after the restart", func() bool { return engines[0].Stats().KeysFlushed > before+10000 })
	t.Logf("DBG %v flushed after restart", time.Since(t0))
	close(stop)
	want := <-result
	t.Logf("DBG %v hammer stopped", time.Since(t0))

	var resent, failed uint64
	for _, e := range engines {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := e.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		cancel()
		resent += e.Stats().Resent
		failed += e.Stats().FailedFlushes
	}
	t.Logf("%d keys over 3 masters; %d failed flushes and %d batches resent around the restart", len(want), failed, resent)
	checkTotals(t, check, ns, want)
}
