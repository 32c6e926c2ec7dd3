package flush

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// pair is a master and a replica, and a client whose connections go to
// whichever of them target names, as a failover client's would.
type pair struct {
	master, replica *redistest.Server
	target          atomic.Pointer[string]
	rdb             *redis.Client
}

func startPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{master: redistest.Start(t, redistest.Options{Args: noSyncDelay})}
	p.replica = redistest.Start(t, redistest.Options{Args: append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(p.master.Port)}, noSyncDelay...)})
	p.target.Store(&p.master.Addr)
	p.rdb = redis.NewClient(&redis.Options{
		Addr: "failover", MaxRetries: -1,
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, *p.target.Load())
		},
	})
	t.Cleanup(func() { p.rdb.Close() })
	inSync(t, p.master)
	return p
}

// noSyncDelay starts a replica's full sync at once (the default waits 5 s
// for more replicas to share it).
var noSyncDelay = []string{"--repl-diskless-sync-delay", "0"}

// inSync waits until master has a replica online.
func inSync(t *testing.T, master *redistest.Server) {
	t.Helper()
	redistest.WaitFor(t, "the replica in sync", func() bool {
		info, _ := master.Client(t).Info(context.Background(), "replication").Result()
		return strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	})
}

// detach cuts the replica off its master (REPLICAOF NO ONE): what the
// master takes from now on, the replica never sees.
func (p *pair) detach(t *testing.T) {
	t.Helper()
	if err := p.replica.Client(t).ReplicaOf(context.Background(), "no", "one").Err(); err != nil {
		t.Fatal(err)
	}
}

// promote kills the master and sends the client to the replica, and
// gives the promoted replica a replica of its own, as Sentinel does when
// the old master comes back.
func (p *pair) promote(t *testing.T) {
	t.Helper()
	p.master.Kill()
	p.target.Store(&p.replica.Addr)
	p.master = redistest.Start(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(p.replica.Port)}})
	inSync(t, p.replica)
}

func TestAutoWaitsForAReplicaOnlyWhenThereIsOne(t *testing.T) {
	ctx := context.Background()
	single := redistest.Start(t, redistest.Options{}).Client(t)
	p := startPair(t)
	for _, tc := range []struct {
		name string
		rdb  redis.UniversalClient
		want uint64 // commands per flush of one batch
	}{{"single", single, 1}, {"replicated", p.rdb, 2}} {
		src := newMapSource()
		f := newFlusher(t, tc.rdb, src, Options{})
		src.add("k", 1)
		if err := f.Flush(ctx); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := f.Stats().Commands; got != tc.want {
			t.Errorf("%s: %d commands for one batch; want %d", tc.name, got, tc.want)
		}
	}
}

// TestUnreplicatedBatchesSurviveFailover: batches a master applied while
// its replica was cut off are kept, and resent to the promoted replica:
// the total there is exact.
func TestUnreplicatedBatchesSurviveFailover(t *testing.T) {
	ctx := context.Background()
	p := startPair(t)
	src := newMapSource()
	f := newFlusher(t, p.rdb, src, Options{BatchKeys: 2})
	var want int64
	add := func(n int64) {
		for _, k := range []string{"a", "b", "c"} {
			src.add(k, n)
			want += n
		}
	}
	add(1)
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.detach(t)
	add(10)
	err := f.Flush(ctx)
	var re *ReplicationError
	if !errors.Is(err, ErrNotReplicated) || !errors.As(err, &re) || re.Want != 1 || re.Acked != 0 {
		t.Fatalf("Flush with the replica cut off = %v; want ErrNotReplicated, 0 of 1", err)
	}
	if st := f.Stats(); st.Unreplicated == 0 || st.PendingBatches == 0 {
		t.Fatalf("Unreplicated %d, PendingBatches %d; want both > 0", st.Unreplicated, st.PendingBatches)
	}
	p.promote(t)
	add(100)
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush after failover: %v", err)
	}
	var got int64
	for _, k := range []string{"a", "b", "c"} {
		v, _ := p.replica.Client(t).Get(ctx, k).Int64()
		got += v
	}
	if got != want {
		t.Fatalf("sum on the promoted replica = %d; want %d", got, want)
	}
}

// TestRegressionIsDetectedAndReported: without waiting for replicas,
// batches confirmed by a master that is then replaced by a replica that
// missed them are reported, with their sum, and flushing goes on.
func TestRegressionIsDetectedAndReported(t *testing.T) {
	ctx := context.Background()
	p := startPair(t)
	src := newMapSource()
	var reported []error
	f := newFlusher(t, p.rdb, src, Options{Replicas: -1, OnError: func(err error) { reported = append(reported, err) }})
	src.add("k", 1)
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, "batch 1 on the replica", func() bool {
		v, _ := p.replica.Client(t).Get(ctx, "k").Int64()
		return v == 1
	})
	p.detach(t)
	for _, n := range []int64{10, 100} { // batches 2 and 3: lost with the master
		src.add("k", n)
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p.promote(t)
	src.add("k", 1000)
	err := f.Flush(ctx)
	var rerr *RegressionError
	if !errors.As(err, &rerr) || !errors.Is(err, ErrRegressed) {
		t.Fatalf("Flush after the lossy failover = %v; want a *RegressionError", err)
	}
	if rerr.Recorded != 1 || rerr.Floor != 3 || rerr.Delta != 110 || !rerr.Complete {
		t.Fatalf("RegressionError %+v; want batches 2-3, delta 110, complete", rerr)
	}
	if v, _ := p.replica.Client(t).Get(ctx, "k").Int64(); v != 1001 {
		t.Fatalf("k on the promoted replica = %d; want 1001 (1 kept, 110 lost and reported, 1000 written)", v)
	}
	if st := f.Stats(); st.Regressions != 1 || st.RegressedDelta != 110 {
		t.Fatalf("Regressions %d, RegressedDelta %d; want 1, 110", st.Regressions, st.RegressedDelta)
	}
	src.add("k", 5)
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush after the regression was reported: %v", err)
	}
}
