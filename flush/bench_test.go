package flush

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// sliceSource hands out the same deltas on every Take.
type sliceSource struct{ deltas []Delta }

func (s *sliceSource) Take(dst []Delta) []Delta { return append(dst, s.deltas...) }
func (s *sliceSource) Settle([]Delta)           {}
func (s *sliceSource) Restore([]Delta)          {}

// flushes runs b.N timed flushes after one that loads the script (and on
// a Cluster the slot map), and returns the commands they sent. With a
// server, it reports the server's CPU time per flush.
func flushes(b *testing.B, f *Flusher, server *redis.Client) (commands uint64) {
	b.Helper()
	ctx := context.Background()
	if err := f.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	before := f.Stats().Commands
	timeServer(b, server, func() {
		for range b.N {
			if err := f.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	return f.Stats().Commands - before
}

// timeServer runs the timed part of a benchmark and, with a server,
// reports the CPU time the server spent per op (INFO cpu): how much of
// the time is Redis' own work.
func timeServer(b *testing.B, server *redis.Client, run func()) {
	b.Helper()
	cpu := func() time.Duration {
		if server == nil {
			return 0
		}
		info, err := server.Info(context.Background(), "cpu").Result()
		if err != nil {
			b.Fatal(err)
		}
		var total float64
		for _, line := range strings.Split(info, "\n") {
			for _, field := range []string{"used_cpu_user:", "used_cpu_sys:"} {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), field); ok {
					s, _ := strconv.ParseFloat(v, 64)
					total += s
				}
			}
		}
		return time.Duration(total * float64(time.Second))
	}
	before := cpu()
	b.ReportAllocs()
	b.ResetTimer()
	run()
	b.StopTimer()
	if server != nil {
		b.ReportMetric(float64(cpu()-before)/float64(time.Millisecond)/float64(b.N), "server-ms/op")
	}
}

// BenchmarkFlush measures one flush of N dirty keys (ns/op is the flush
// duration) in exactly-once mode, plain pipelined mode, and as a raw
// go-redis pipeline of the same INCRBYs in chunks of the same size.
func BenchmarkFlush(b *testing.B) {
	rdb := redistest.Client(b)
	ctx := context.Background()
	for _, n := range []int{10000, 100000} {
		p := redistest.Prefix(b)
		// As the engine does: names, with the namespace as KeyPrefix.
		deltas := make([]Delta, n)
		keys := make([]string, n)
		for i := range deltas {
			deltas[i] = Delta{Key: fmt.Sprintf("pv:/page/%06d", i), N: 1}
			keys[i] = p + deltas[i].Key
		}
		report := func(b *testing.B, commands uint64) {
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
			b.ReportMetric(float64(commands)/b.Elapsed().Seconds(), "cmds/s")
		}
		for _, mode := range []Mode{ExactlyOnce, AtLeastOnce} {
			b.Run(fmt.Sprintf("keys=%d/%v", n, mode), func(b *testing.B) {
				f, err := New(rdb, &sliceSource{deltas}, Options{Mode: mode, KeyPrefix: p, RecordPrefix: p + "w:"})
				if err != nil {
					b.Fatal(err)
				}
				report(b, flushes(b, f, rdb))
			})
		}
		b.Run(fmt.Sprintf("keys=%d/raw-pipeline", n), func(b *testing.B) {
			const chunk = 16384 // the default PipelineKeys
			timeServer(b, rdb, func() {
				for range b.N {
					for lo := 0; lo < n; lo += chunk {
						pipe := rdb.Pipeline()
						for i := lo; i < min(lo+chunk, n); i++ {
							pipe.IncrBy(ctx, keys[i], deltas[i].N)
						}
						if _, err := pipe.Exec(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
			report(b, uint64(n*b.N))
		})
	}
}

// BenchmarkFlushReplicated measures one flush of N dirty keys on a local
// master with one replica, waiting for the replica (the default there) and
// not: the cost of replica acknowledgement is one WAIT per pipeline and
// the replica's lag behind the last write.
func BenchmarkFlushReplicated(b *testing.B) {
	ctx := context.Background()
	master := redistest.Start(b, redistest.Options{Args: noSyncDelay})
	redistest.Start(b, redistest.Options{Args: append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}, noSyncDelay...)})
	rdb := master.Client(b)
	redistest.WaitFor(b, "the replica in sync", func() bool {
		info, _ := rdb.Info(ctx, "replication").Result()
		return strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	})
	for _, n := range []int{100, 10000} {
		deltas := make([]Delta, n)
		for i := range deltas {
			deltas[i] = Delta{Key: fmt.Sprintf("pv:/page/%06d", i), N: 1}
		}
		for _, wait := range []struct {
			name     string
			replicas int
		}{{"no-wait", -1}, {"wait-1", 0}} {
			b.Run(fmt.Sprintf("keys=%d/%s", n, wait.name), func(b *testing.B) {
				f, err := New(rdb, &sliceSource{deltas}, Options{Replicas: wait.replicas})
				if err != nil {
					b.Fatal(err)
				}
				flushes(b, f, nil)
			})
		}
	}
}

// BenchmarkFlushCluster measures one exactly-once flush of 100,000 dirty
// keys to a Cluster of three masters and, as the reference in the same
// run, to one node. On the Cluster each master gets one script call per
// BatchKeys of its keys, under one writer record.
func BenchmarkFlushCluster(b *testing.B) {
	cluster := redistest.StartCluster(b, redistest.ClusterOptions{Masters: 3})
	const n = 100000
	deltas := make([]Delta, n)
	for i := range deltas {
		deltas[i] = Delta{Key: fmt.Sprintf("pv:/page/%06d", i), N: 1}
	}
	for _, target := range []struct {
		name string
		rdb  redis.UniversalClient
	}{
		{"one-node", redistest.Client(b)},
		{"3-masters", cluster.Client(b)},
	} {
		b.Run(fmt.Sprintf("keys=%d/%s", n, target.name), func(b *testing.B) {
			p := redistest.Prefix(b)
			f, err := New(target.rdb, &sliceSource{deltas}, Options{KeyPrefix: p, RecordPrefix: p + "w:"})
			if err != nil {
				b.Fatal(err)
			}
			commands := flushes(b, f, nil)
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
			b.ReportMetric(float64(commands)/float64(b.N), "calls/flush")
		})
	}
}
