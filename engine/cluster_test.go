package engine_test

import (
	"context"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// clusterEngines returns n engines on cluster under namespace ns, each
// with a client of its own, flushing every 50 ms.
func clusterEngines(t *testing.T, cluster *redistest.Cluster, ns string, n int) []*engine.Engine {
	t.Helper()
	var engines []*engine.Engine
	for range n {
		// Timeouts far above what a flush takes on a loaded machine. A
		// flush of 10,000 keys is a pipeline of some 7 batches per master,
		// and go-redis gives a whole pipeline one write and one read
		// deadline; when those (or FlushTimeout) are shorter than a
		// starved, race-instrumented client needs, every flush times out,
		// and so does every resend of the same batches: the engine never
		// catches up. A restarted master needs no timeout to be noticed:
		// its connections close.
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
	return engines
}

// TestClusterExactTotals runs the exact-totals load against a real
// 3-master Redis Cluster and restarts one master mid-run: batches are
// grouped per master with a writer record on each, and the ones in doubt
// during the restart are resent until the master answers.
func TestClusterExactTotals(t *testing.T) {
	cluster := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, AppendOnly: true})
	check := cluster.Client(t)
	ns := redistest.Prefix(t)
	engines := clusterEngines(t, cluster, ns, 4)
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

// TestClusterReshardExactTotals: four engines add to 10,000 keys on a
// 3-master Cluster while redis-cli --cluster reshard moves slots between
// the masters: 1,800 from master 0 to 1, then all of master 2's to master
// 0, among them the slot of each engine's writer record on master 2 (its
// highest), then 2,000 from master 1 to the empty master 2. Batches in
// doubt follow their records; keys a master stops serving go to their
// new master; every key ends exact.
func TestClusterReshardExactTotals(t *testing.T) {
	cluster := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	check := cluster.Client(t)
	ctx := context.Background()
	ids := make([]string, 3)
	for i := range ids {
		rc := cluster.Nodes[i].Client(t)
		id, err := rc.ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatalf("CLUSTER MYID: %v", err)
		}
		ids[i] = id
		// A master left without slots stays a master, to be given some
		// again (by default it would become a replica).
		if err := rc.ConfigSet(ctx, "cluster-allow-replica-migration", "no").Err(); err != nil {
			t.Fatal(err)
		}
	}
	ns := redistest.Prefix(t)
	engines := clusterEngines(t, cluster, ns, 4)
	var counted atomic.Int64
	stop := make(chan struct{})
	result := make(chan map[string]int64)
	go func() { result <- hammer(engines, 4, 10000, 1<<40, stop, &counted) }()

	const hang = 3 * time.Minute
	for _, move := range []struct{ from, to, slots int }{{0, 1, 1800}, {2, 0, 16384 - 10923}, {1, 2, 2000}} {
		before := counted.Load()
		redistest.WaitForWithin(t, "adds before the reshard", hang, func() bool { return counted.Load() > before+20_000 })
		rctx, cancel := context.WithTimeout(ctx, hang)
		start := time.Now()
		out, err := exec.CommandContext(rctx, "redis-cli", "--cluster", "reshard", cluster.Nodes[0].Addr,
			"--cluster-from", ids[move.from], "--cluster-to", ids[move.to],
			"--cluster-slots", strconv.Itoa(move.slots), "--cluster-yes").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("redis-cli --cluster reshard %d→%d: %v\n%s", move.from, move.to, err, tail(string(out), 2000))
		}
		t.Logf("resharded %d slots %d→%d in %v; %d adds so far", move.slots, move.from, move.to, time.Since(start).Round(time.Millisecond), counted.Load())
	}
	before := counted.Load()
	redistest.WaitForWithin(t, "adds after the reshards", hang, func() bool { return counted.Load() > before+20_000 })
	close(stop)
	want := <-result

	for i, e := range engines {
		cctx, cancel := context.WithTimeout(ctx, hang)
		if err := e.Close(cctx); err != nil {
			t.Fatalf("engine %d: Close: %v", i, err)
		}
		cancel()
		st := e.Stats()
		t.Logf("engine %d: %d keys moved, %d batches resent (%d duplicates), %d failed flushes",
			i, st.Moved, st.Resent, st.Duplicates, st.FailedFlushes)
		if st.LostBatches != 0 || st.Regressions != 0 {
			t.Errorf("engine %d: %d batches lost, %d regressions; want none", i, st.LostBatches, st.Regressions)
		}
	}
	records := 0
	for i := range 3 {
		keys, _ := cluster.Nodes[i].Client(t).Keys(ctx, ns+"writer:*").Result()
		records += len(keys)
	}
	t.Logf("%d adds to %d keys; %d writer records for 4 engines on 3 masters", counted.Load(), len(want), records)
	checkTotals(t, check, ns, want)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
