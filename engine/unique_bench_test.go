package engine_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// benchVisitors are the members the benchmarks add, made once.
var benchVisitors = sync.OnceValue(func() []string {
	vs := make([]string, 1<<16)
	for i := range vs {
		vs[i] = visitor(i)
	}
	return vs
})

// BenchmarkUniqueAdd adds members from every goroutine, with the engine
// flushing to a real Redis every 100ms, and reports the Adds per Redis
// command and the CPU time of the Redis server per Add. Compare with BenchmarkNaivePFADD, one PFADD
// round trip per event, run in the same `go test -bench`:
//
//   - 65k-members: one count, 65,536 distinct members, cycled (a dense
//     sketch, where most Adds raise nothing);
//   - 100-members: one count whose 100 members come back (a small
//     sketch, until contention turns it dense);
//   - 10k-counts: 10,000 counts (say, unique viewers per post), each
//     Add to a random one, through handles.
func BenchmarkUniqueAdd(b *testing.B) {
	members := benchVisitors()
	for _, tc := range []struct {
		name            string
		counts, members int
	}{
		{"65k-members", 1, len(members)},
		{"100-members", 1, 100},
		{"10k-counts", 10_000, len(members)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rdb := redistest.Client(b)
			e := newEngine(b, rdb, engine.Options{Namespace: redistest.Prefix(b)})
			us := make([]*engine.Unique, tc.counts)
			for i := range us {
				us[i] = uniqueOrFail(b, e, fmt.Sprint("uv:", i))
			}
			runAdds(b, rdb, func(i int) error {
				us[i%tc.counts].Add(members[i%tc.members])
				return nil
			}, func() float64 {
				if err := e.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
				return float64(e.Stats().Uniques.Commands)
			})
		})
	}
}

// BenchmarkNaivePFADD is one PFADD round trip per event on the same
// Redis: the cost Unique removes.
func BenchmarkNaivePFADD(b *testing.B) {
	rdb := redistest.Client(b)
	key := redistest.Prefix(b) + "naive"
	members := benchVisitors()
	ctx := context.Background()
	runAdds(b, rdb, func(i int) error {
		return rdb.PFAdd(ctx, key, members[i%len(members)]).Err()
	}, func() float64 { return float64(b.N) })
}

// runAdds calls add from every goroutine, each with its own sequence of
// i, then end, which returns the Redis commands sent, and reports the
// calls per command and the Redis server's CPU time per call.
func runAdds(b *testing.B, rdb redis.UniversalClient, add func(i int) error, end func() (commands float64)) {
	var seed atomic.Uint64
	b.ReportAllocs()
	cpu := redisCPU(b, rdb)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if err := add(i); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/end(), "adds/cmd")
	b.ReportMetric((redisCPU(b, rdb)-cpu)/float64(b.N), "redis-ns/op")
}

// redisCPU returns the CPU time the Redis server behind rdb has used, in
// nanoseconds (INFO cpu: its own user and system time, which counts the
// reading and parsing of commands, not only their execution).
func redisCPU(b *testing.B, rdb redis.UniversalClient) float64 {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sec float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, _ := strconv.ParseFloat(v, 64)
			sec += f
		}
	}
	return sec * 1e9
}
