package engine_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// BenchmarkAddOnce adds to one billed counter from every goroutine, with
// the engine flushing to a real Redis every 100ms, and reports the CPU
// time of the Redis server per add (Close's final flush included):
//
//   - AddOnce: each add under a token of its own, made in the loop as a
//     request ID would be (one small allocation of the figure); an add
//     turned away because Redis is behind (ErrTokenBacklog: a million
//     adds wait) is tried again after a millisecond, as a caller would;
//   - retry: AddOnce of a token the process holds already, dropped
//     without I/O;
//   - Add: Counter.Add, the plain add, for reference in the same run.
//
// Compare with BenchmarkNaiveSetNXIncrBy, SET NX and INCRBY round trips
// per event, run in the same `go test -bench`.
func BenchmarkAddOnce(b *testing.B) {
	for _, tc := range []struct {
		name string
		// add adds once; token is the goroutine's prefix, with room to
		// append i to.
		add func(c *engine.Counter, token []byte, i int) error
	}{
		{"AddOnce", func(c *engine.Counter, token []byte, i int) error {
			return c.AddOnce(1, string(strconv.AppendInt(token, int64(i), 10)))
		}},
		{"retry", func(c *engine.Counter, token []byte, _ int) error {
			return c.AddOnce(1, string(token))
		}},
		{"Add", func(c *engine.Counter, _ []byte, _ int) error {
			c.Add(1)
			return nil
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rdb := redistest.Client(b)
			e := newEngine(b, rdb, engine.Options{Namespace: redistest.Prefix(b)})
			c, err := e.Counter("billed")
			if err != nil {
				b.Fatal(err)
			}
			var goroutines atomic.Int64
			b.ReportAllocs()
			cpu := redisCPU(b, rdb)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				token := append(make([]byte, 0, 64), "request-"...)
				token = append(strconv.AppendInt(token, goroutines.Add(1), 10), '-')
				for i := 0; pb.Next(); i++ {
					err := tc.add(c, token, i)
					for errors.Is(err, engine.ErrTokenBacklog) {
						time.Sleep(time.Millisecond)
						err = tc.add(c, token, i)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if err := e.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric((redisCPU(b, rdb)-cpu)/float64(b.N), "redis-ns/op")
		})
	}
}

// BenchmarkNaiveSetNXIncrBy is what a retry-safe add costs without the
// engine: SET token NX PX, then INCRBY when the token was new, two round
// trips per event (and not atomic: a crash between them loses the add).
func BenchmarkNaiveSetNXIncrBy(b *testing.B) {
	rdb := redistest.Client(b)
	ns := redistest.Prefix(b)
	ctx := context.Background()
	var goroutines atomic.Int64
	b.ReportAllocs()
	cpu := redisCPU(b, rdb)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		prefix := ns + "once:request-" + strconv.FormatInt(goroutines.Add(1), 10) + "-"
		for i := 0; pb.Next(); i++ {
			ok, err := rdb.SetNX(ctx, prefix+strconv.Itoa(i), 1, time.Minute).Result()
			if err == nil && ok {
				err = rdb.IncrBy(ctx, ns+"billed", 1).Err()
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric((redisCPU(b, rdb)-cpu)/float64(b.N), "redis-ns/op")
}
