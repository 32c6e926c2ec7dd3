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

	// Each wait, and each Close, is a round or two of flushes of all
	// 10,000 keys: seconds on an idle machine, tens of seconds with every
	// core busy (see above), so the hang guard is minutes.
	const hang = 3 * time.Minute
	redistest.WaitForWithin(t, "flushes before the restart", hang, func() bool {
		return engines[0].Stats().KeysFlushed > 10000
	})
	cluster.RestartNode(1)
	before := engines[0].Stats().KeysFlushed
	redistest.WaitForWithin(t, "flushes after the restart", hang, func() bool {
		return engines[0].Stats().KeysFlushed > before+10000
	})
	close(stop)
	want := <-result

	var resent, failed uint64
	for _, e := range engines {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
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
