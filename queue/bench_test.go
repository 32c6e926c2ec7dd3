package queue_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/queue"
)

// Push and consume throughput of the queue against the naive list queue
// (one RPUSH per message, one LPOP per message) on the same Redis. Run:
//
//	go test -run '^$' -bench . -benchtime 20000x ./queue/
//
// Every figure is reported as msgs/s so they compare directly.

var body = make([]byte, 64)

func msgsPerSec(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkPush(b *testing.B) {
	rdb := redistest.Client(b)
	ctx := context.Background()
	b.Run("naive-RPUSH", func(b *testing.B) {
		key := redistest.Prefix(b) + "naive"
		b.ReportAllocs()
		for range b.N {
			if err := rdb.RPush(ctx, key, body).Err(); err != nil {
				b.Fatal(err)
			}
		}
		msgsPerSec(b)
		rdb.Del(ctx, key)
	})
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("queue-batch=%d", batch), func(b *testing.B) {
			q := newQueue(b, rdb, queue.Options{})
			msgs := make([][]byte, batch)
			for i := range msgs {
				msgs[i] = body
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i += batch {
				if _, err := q.Push(ctx, msgs[:min(batch, b.N-i)]...); err != nil {
					b.Fatal(err)
				}
			}
			msgsPerSec(b)
			rdb.Del(ctx, q.Keys().Ready)
		})
	}
}

func BenchmarkConsume(b *testing.B) {
	rdb := redistest.Client(b)
	ctx := context.Background()
	fill := func(b *testing.B, key string, encode bool) {
		b.Helper()
		pipe := rdb.Pipeline()
		for i := 0; i < b.N; i += 1000 {
			args := make([]any, min(1000, b.N-i))
			for j := range args {
				if encode {
					args[j] = queue.Encode(queue.NewID(), body)
				} else {
					args[j] = body
				}
			}
			pipe.LPush(ctx, key, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("naive-LPOP", func(b *testing.B) {
		key := redistest.Prefix(b) + "naive"
		fill(b, key, false)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := rdb.LPop(ctx, key).Err(); err != nil {
				b.Fatal(err)
			}
		}
		msgsPerSec(b)
	})
	for _, prefetch := range []int{1, 32, 256} {
		b.Run(fmt.Sprintf("queue-prefetch=%d", prefetch), func(b *testing.B) {
			q := newQueue(b, rdb, fast(queue.Options{Prefetch: prefetch}))
			fill(b, q.Keys().Ready, true)
			var n atomic.Int64
			done := make(chan struct{})
			ctx, cancel := context.WithCancel(ctx)
			b.ReportAllocs()
			b.ResetTimer()
			go q.Consume(ctx, func(context.Context, queue.Message) error {
				if n.Add(1) == int64(b.N) {
					close(done)
				}
				return nil
			})
			<-done
			b.StopTimer()
			msgsPerSec(b)
			cancel()
		})
	}
}

var _ redis.UniversalClient = (*redis.Client)(nil)

// replicated returns a client of a local master with one replica
// connected directly (no fault proxy in the way).
func replicated(b *testing.B) *redis.Client {
	b.Helper()
	nodelay := []string{"--repl-diskless-sync-delay", "0"}
	m := redistest.Start(b, redistest.Options{Args: nodelay})
	redistest.Start(b, redistest.Options{Args: append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(m.Port)}, nodelay...)})
	rdb := m.Client(b)
	waitReplicaOnline(b, rdb)
	return rdb
}

// What waiting for a replica costs a Push and a consumer, on a local
// master with one replica:
//
//	go test -run '^$' -bench Replicated -benchmem ./queue/
//
// "no-WAIT" is Replicas -1; "WAIT" is the default (auto: one replica).
func BenchmarkPushReplicated(b *testing.B) {
	rdb := replicated(b)
	ctx := context.Background()
	for _, mode := range []struct {
		name     string
		replicas int
	}{{"no-WAIT", -1}, {"WAIT", 0}} {
		for _, batch := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode.name, batch), func(b *testing.B) {
				q := newQueue(b, rdb, queue.Options{Replicas: mode.replicas})
				msgs := make([][]byte, batch)
				for i := range msgs {
					msgs[i] = body
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := q.Push(ctx, msgs...); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
				rdb.Del(ctx, q.Keys().Ready)
			})
		}
		b.Run(mode.name+"/parallel", func(b *testing.B) {
			q := newQueue(b, rdb, queue.Options{Replicas: mode.replicas})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := q.Push(ctx, body); err != nil {
						b.Error(err)
						return
					}
				}
			})
			msgsPerSec(b)
			rdb.Del(ctx, q.Keys().Ready)
		})
	}
}

// BenchmarkConsumeReplicated: a consumer's take WAITs (once per batch of up
// to Prefetch) by default when the master has a replica.
func BenchmarkConsumeReplicated(b *testing.B) {
	rdb := replicated(b)
	ctx := context.Background()
	for _, mode := range []struct {
		name     string
		replicas int
	}{{"no-WAIT", -1}, {"WAIT", 0}} {
		for _, prefetch := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/prefetch=%d", mode.name, prefetch), func(b *testing.B) {
				q := newQueue(b, rdb, fast(queue.Options{Prefetch: prefetch, Replicas: mode.replicas}))
				for i := 0; i < b.N; i += 1000 {
					msgs := make([][]byte, min(1000, b.N-i))
					for j := range msgs {
						msgs[j] = body
					}
					if _, err := q.Push(ctx, msgs...); err != nil {
						b.Fatal(err)
					}
				}
				var n atomic.Int64
				done := make(chan struct{})
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				b.ReportAllocs()
				b.ResetTimer()
				go q.Consume(ctx, func(context.Context, queue.Message) error {
					if n.Add(1) == int64(b.N) {
						close(done)
					}
					return nil
				})
				<-done
				b.StopTimer()
				msgsPerSec(b)
			})
		}
	}
}
