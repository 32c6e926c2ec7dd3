package lease

import (
	"context"
	"crypto/rand"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// BenchmarkUncontended compares taking and dropping an uncontended lease
// with the naive lock it replaces (SET NX PX, then an unchecked DEL), on
// one Redis, counting round trips with a client hook. Each parallel
// goroutine uses its own name, so nobody waits.
//
//	go test -run '^$' -bench Uncontended -benchtime 10000x -count 3 ./lease/
func BenchmarkUncontended(b *testing.B) {
	rdb := redistest.Client(b)
	rt := &roundTrips{}
	rdb.AddHook(rt)
	prefix := redistest.Prefix(b)
	ctx := context.Background()
	ttl := 10 * time.Second
	o := Options{KeyPrefix: prefix}
	// Load the scripts, so that EVALSHA hits from the first op.
	if l, err := TryAcquire(ctx, rdb, "warm", ttl, o); err != nil {
		b.Fatal(err)
	} else if err := l.Release(ctx); err != nil {
		b.Fatal(err)
	}

	var names atomic.Int64
	name := func() string { return "b" + strconv.FormatInt(names.Add(1), 10) }
	benches := []struct {
		name string
		op   func(name string) error
	}{
		{"raw SET NX PX+DEL", func(name string) error {
			key := prefix + "raw:" + name
			if err := rdb.SetArgs(ctx, key, rand.Text(), redis.SetArgs{Mode: "NX", TTL: ttl}).Err(); err != nil {
				return err
			}
			return rdb.Del(ctx, key).Err()
		}},
		{"TryAcquire+Release", func(name string) error {
			l, err := TryAcquire(ctx, rdb, name, ttl, o)
			if err != nil {
				return err
			}
			return l.Release(ctx)
		}},
		{"TryAcquire+Release AutoRenew", func(name string) error {
			l, err := TryAcquire(ctx, rdb, name, ttl, Options{KeyPrefix: prefix, AutoRenew: true})
			if err != nil {
				return err
			}
			return l.Release(ctx)
		}},
	}
	for _, bb := range benches {
		// serial: one op at a time, so ns/op is the latency of an op.
		b.Run(bb.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			start := rt.n.Load()
			n := name()
			for b.Loop() {
				if err := bb.op(n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rt.n.Load()-start)/float64(b.N), "roundtrips/op")
		})
		// parallel: GOMAXPROCS goroutines, so ns/op is inverse throughput.
		b.Run(bb.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			start := rt.n.Load()
			b.RunParallel(func(pb *testing.PB) {
				n := name()
				for pb.Next() {
					if err := bb.op(n); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(rt.n.Load()-start)/float64(b.N), "roundtrips/op")
		})
	}
}
