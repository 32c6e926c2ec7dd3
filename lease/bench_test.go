package lease

import (
	"context"
	"crypto/rand"
	"strconv"
	"strings"
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

// BenchmarkReplicated measures what waiting for replicas costs: one
// TryAcquire+Release at a time (ns/op is its latency) on a master with a
// replica on loopback, and on a single Redis, against the naive lock.
// Replicas -1 sends no WAIT; auto (the default) finds the replica in a
// first round trip (the script refuses to write without WAIT) and then
// waits, or on a single Redis checks INFO inside the script; 1 waits at
// once, as a lease's refreshes and a Hold loop's acquisitions do once auto
// has seen the replica.
//
//	go test -run '^$' -bench Replicated -benchmem -count 5 ./lease/
func BenchmarkReplicated(b *testing.B) {
	ctx := context.Background()
	master := redistest.Start(b, redistest.Options{Args: noSyncDelay})
	_, port, _ := strings.Cut(master.Addr, ":")
	redistest.Start(b, redistest.Options{Args: append([]string{"--replicaof", "127.0.0.1", port}, noSyncDelay...)})
	single := redistest.Start(b, redistest.Options{})
	const ttl = 10 * time.Second
	for _, srv := range []struct {
		name string
		s    *redistest.Server
	}{{"replica", master}, {"single", single}} {
		rdb := srv.s.Client(b)
		rt := &roundTrips{}
		rdb.AddHook(rt)
		redistest.WaitFor(b, "the replica to sync", func() bool {
			if srv.s != master {
				return true
			}
			rdb.Set(ctx, "sync-probe", "x", time.Minute)
			n, _ := rdb.Do(ctx, "WAIT", 1, 100).Int64()
			return n >= 1
		})
		prefix := redistest.Prefix(b)
		benches := []struct {
			name string
			op   func() error
		}{
			{"raw SET NX PX+DEL", func() error {
				key := prefix + "raw"
				if err := rdb.SetArgs(ctx, key, rand.Text(), redis.SetArgs{Mode: "NX", TTL: ttl}).Err(); err != nil {
					return err
				}
				return rdb.Del(ctx, key).Err()
			}},
		}
		for _, r := range []struct {
			name     string
			replicas int
		}{{"Replicas=-1", -1}, {"Replicas=auto", 0}, {"Replicas=1", 1}} {
			if srv.s == single && r.replicas > 0 {
				continue // would wait out ReplicaTimeout and fail
			}
			o := Options{KeyPrefix: prefix, Replicas: r.replicas}
			benches = append(benches, struct {
				name string
				op   func() error
			}{"TryAcquire+Release " + r.name, func() error {
				l, err := TryAcquire(ctx, rdb, "job", ttl, o)
				if err != nil {
					return err
				}
				return l.Release(ctx)
			}})
		}
		for _, bb := range benches {
			b.Run(srv.name+"/"+bb.name, func(b *testing.B) {
				if err := bb.op(); err != nil { // load the scripts
					b.Fatal(err)
				}
				b.ReportAllocs()
				start := rt.n.Load()
				for b.Loop() {
					if err := bb.op(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(rt.n.Load()-start)/float64(b.N), "roundtrips/op")
			})
		}
	}
}
