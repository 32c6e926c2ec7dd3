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
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:       cluster.Addrs(),
			DialTimeout: 200 * time.Millisecond,
			ReadTimeout: slowdown * 200 * time.Millisecond,
		})
		t.Cleanup(func() { c.Close() })
		engines = append(engines, newEngine(t, c, engine.Options{
			Namespace: ns, FlushInterval: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		}))
	}
	stop := make(chan struct{})
	result := make(chan map[string]int64)
	go func() { result <- hammer(engines, 8, 10000, 1<<40, stop, nil) }()

	redistest.WaitFor(t, "flushes before the restart", func() bool { return engines[0].Stats().KeysFlushed > 10000 })
	cluster.RestartNode(1)
	before := engines[0].Stats().KeysFlushed
	redistest.WaitFor(t, "flushes after the restart", func() bool { return engines[0].Stats().KeysFlushed > before+10000 })
	close(stop)
	want := <-result

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
