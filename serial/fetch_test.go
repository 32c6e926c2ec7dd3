package serial

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestNextReportsBadKeys(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(key string) error
		want  error
	}{
		{"not a number", func(k string) error { return rdb.Set(ctx, k, "abc", 0).Err() }, ErrNotInteger},
		{"a float", func(k string) error { return rdb.Set(ctx, k, "1.5", 0).Err() }, ErrNotInteger},
		{"beyond int64", func(k string) error { return rdb.Set(ctx, k, "99999999999999999999", 0).Err() }, ErrNotInteger},
		{"a list", func(k string) error { return rdb.RPush(ctx, k, "x").Err() }, ErrNotInteger},
		{"would overflow", func(k string) error { return rdb.Set(ctx, k, math.MaxInt64-50, 0).Err() }, ErrOverflow},
		// A block reaching zero or below would issue IDs under 1.
		{"negative", func(k string) error { return rdb.Set(ctx, k, -500, 0).Err() }, ErrRegression},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := redistest.Prefix(t) + "bad"
			if err := tt.setup(key); err != nil {
				t.Fatal(err)
			}
			a := newAllocator(t, rdb, key, Options{})
			id, err := a.Next(ctx)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Next() = %d, %v; want %v", id, err, tt.want)
			}
			if !strings.Contains(err.Error(), key) {
				t.Errorf("error %q does not name the key %q", err, key)
			}
			if st := a.Stats(); st.Issued != 0 || st.Blocks != 0 {
				t.Errorf("Stats() = %+v; want nothing issued or accepted", st)
			}
		})
	}
}

func TestNextRecoversFromTransientFetchError(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "transient"
	rdb.Set(ctx, key, "oops", 0)
	a := newAllocator(t, rdb, key, Options{MinBlock: 10, MaxBlock: 10})
	if _, err := a.Next(ctx); !errors.Is(err, ErrNotInteger) {
		t.Fatalf("Next() error = %v; want ErrNotInteger", err)
	}
	rdb.Set(ctx, key, 1000, 0) // repaired: the error was not sticky
	if id, err := a.Next(ctx); err != nil || id != 1001 {
		t.Fatalf("Next() after repair = %d, %v; want 1001, nil", id, err)
	}
	if st := a.Stats(); st.FetchErrors != 1 || st.Blocks != 1 {
		t.Errorf("Stats() = %+v; want 1 fetch error, 1 block", st)
	}
}

// startReplicated starts a master and a replica of it and waits until the
// replica is online.
func startReplicated(t testing.TB) (master, replica *redistest.Server) {
	t.Helper()
	// Without the default 5s diskless-sync delay, the replica syncs at once.
	master = redistest.Start(t, redistest.Options{Args: []string{"--repl-diskless-sync-delay", "0"}})
	replica = redistest.Start(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}})
	waitOnline(t, master.Client(t))
	return master, replica
}

// waitOnline waits until master has a replica that acknowledges writes.
// INFO's state=online is not enough: after a diskless sync Redis 7.0 starts
// streaming writes to the replica only at its first REPLCONF ACK, up to a
// second later, so a WAIT right after it may time out.
func waitOnline(t testing.TB, master *redis.Client) {
	t.Helper()
	ctx := context.Background()
	redistest.WaitFor(t, "the replica to acknowledge a write", func() bool {
		pipe := master.Pipeline()
		pipe.Incr(ctx, "serialtest:online")
		wait := pipe.Do(ctx, "wait", 1, 100)
		pipe.Exec(ctx)
		n, err := wait.Int64()
		return err == nil && n == 1
	})
}

func TestReplicas(t *testing.T) {
	master, replica := startReplicated(t)
	rdb := master.Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "durable"
	a := newAllocator(t, rdb, key, Options{MinBlock: 10, MaxBlock: 10, Replicas: 1, ReplicaTimeout: 2 * time.Second})

	t.Run("acknowledged", func(t *testing.T) {
		for want := int64(1); want <= 25; want++ {
			if id, err := a.Next(ctx); err != nil || id != want {
				t.Fatalf("Next() = %d, %v; want %d, nil", id, err, want)
			}
		}
		quiesce(t, a)
		// What the allocator accepted is on the replica.
		got, err := replica.Client(t).Get(ctx, key).Int64()
		if hw := a.Stats().HighWater; err != nil || got < hw {
			t.Errorf("replica GET %s = %d, %v; want ≥ HighWater %d", key, got, err, hw)
		}
	})

	t.Run("replica stopped", func(t *testing.T) {
		replica.Stop()
		b := newAllocator(t, rdb, key, Options{MinBlock: 10, MaxBlock: 10, Replicas: 1, ReplicaTimeout: 100 * time.Millisecond})
		id, err := b.Next(ctx)
		var rerr *ReplicationError
		if !errors.Is(err, ErrNotReplicated) || !errors.As(err, &rerr) {
			t.Fatalf("Next() = %d, %v; want a *ReplicationError", id, err)
		}
		if rerr.Want != 1 || rerr.Acked != 0 || !strings.Contains(rerr.Op, strconv.Quote(key)) {
			t.Errorf("ReplicationError = %+v; want Want 1, Acked 0, an Op naming key %q", rerr, key)
		}
		// The master granted the discarded block: its value is at or above
		// the end of every block discarded so far.
		discarded, err := rdb.Get(ctx, key).Int64()
		if err != nil {
			t.Fatalf("master GET %s: %v", key, err)
		}
		if st := b.Stats(); st.Issued != 0 || st.Blocks != 0 || st.HighWater != 0 || st.FetchErrors != 1 {
			t.Errorf("Stats() = %+v; want the block discarded: nothing issued or accepted, 1 fetch error", st)
		}

		replica.Restart()
		waitOnline(t, rdb)
		id, err = b.Next(ctx)
		if err != nil || id <= discarded {
			t.Fatalf("Next() after the replica returned = %d, %v; want an ID above the discarded blocks, ending at or below %d", id, err, discarded)
		}
	})
}

func TestNextOnCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, redistest.ClusterOptions{})
	rdb := cluster.Client(t)
	ctx := context.Background()
	keys := []string{"orders", "invoices", "{tenant7}:orders"}
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			key := redistest.Prefix(t) + k
			a := newAllocator(t, rdb, key, Options{MinBlock: 10, MaxBlock: 10})
			ids, err := a.NextN(ctx, 55)
			if err != nil || len(ids) != 55 || ids[0] != 1 || ids[54] != 55 {
				t.Fatalf("NextN(55) = %v, %v; want 1..55", ids, err)
			}
			// No replicas in this cluster: WAIT reaches the key's master
			// (a keyless WAIT on another node would not see the write
			// either, but an error here would show the pipeline failed).
			b := newAllocator(t, rdb, key, Options{Replicas: 1, ReplicaTimeout: 50 * time.Millisecond})
			if _, err := b.Next(ctx); !errors.Is(err, ErrNotReplicated) {
				t.Errorf("Next() with Replicas 1 on a replica-less cluster: %v; want ErrNotReplicated", err)
			}
		})
	}
}

// BenchmarkFetch times one block fetch, the allocator's only round trip,
// on a local master with one replica: INCRBY alone (Replicas -1, or
// auto before a replica is seen) and INCRBY then WAIT 1 in one pipeline
// (the default once the master has a replica). Their ratio is what the
// acknowledgement costs per block; per ID it is divided by the block size.
// "parallel" is GOMAXPROCS allocators' fetches at once.
func BenchmarkFetch(b *testing.B) {
	master, _ := startReplicated(b)
	rdb := master.Client(b)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		want int
	}{
		{"INCRBY", 0},
		{"INCRBY+WAIT", 1},
	} {
		a := newAllocator(b, rdb, redistest.Prefix(b)+"fetch", Options{ReplicaTimeout: time.Second})
		fetch := func() error {
			_, err := a.incr(ctx, 100, tc.want)
			return err
		}
		b.Run(tc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := fetch(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := fetch(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkNextReplicated is GOMAXPROCS goroutines sharing one Allocator
// on a master with one replica, with the default Replicas (auto: every
// block is acknowledged) and with -1 (never): the per-ID cost of the WAIT
// after prefetch and the reserve have hidden what they can. A tight loop
// outruns Redis at small blocks, so there the figure is the fetch's.
func BenchmarkNextReplicated(b *testing.B) {
	master, _ := startReplicated(b)
	rdb := master.Client(b)
	ctx := context.Background()
	for _, size := range []int64{100, 10_000} {
		for _, w := range []struct {
			name string
			n    int
		}{{"auto", 0}, {"never", -1}} {
			b.Run(fmt.Sprintf("block=%d/wait=%s", size, w.name), func(b *testing.B) {
				a := newAllocator(b, rdb, redistest.Prefix(b)+"next", Options{MinBlock: size, MaxBlock: size, Replicas: w.n})
				if _, err := a.Next(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := a.Next(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				st := a.Stats()
				b.ReportMetric(float64(st.Blocks), "blocks")
				b.ReportMetric(float64(st.Waits), "waits")
				b.ReportMetric(float64(st.Replicas), "replicas")
			})
		}
	}
}
