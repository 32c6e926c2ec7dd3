package queue_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/logtest"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/lease"
	"github.com/abacus-go/abacus/queue"
)

// TestLoggerSeesReclaim: the messages of a dead consumer moved back are
// logged, with the consumer and how many.
func TestLoggerSeesReclaim(t *testing.T) {
	rdb := redistest.Client(t)
	var rec logtest.Recorder
	q := newQueue(t, rdb, fast(queue.Options{Logger: rec.Logger()}))
	ghost(t, rdb, q, "dead", []byte("m1"), []byte("m2"))
	if n, err := q.Reclaim(context.Background()); n != 2 || err != nil {
		t.Fatalf("Reclaim = %d, %v; want 2, nil", n, err)
	}
	rec.Want(t, 1, slog.LevelWarn, "dead consumer's messages reclaimed", "consumer", "dead", "messages", "2", "queue", "jobs")
}

// TestLoggerSeesMalformedEntry: a list entry that is not a message is
// dead-lettered and logged, once.
func TestLoggerSeesMalformedEntry(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	var rec logtest.Recorder
	// A lease no late renewal on a loaded machine can lose: a consumer
	// that lost it would have its entry reclaimed, delivered again and
	// logged twice.
	q := newQueue(t, rdb, fast(queue.Options{LeaseTTL: 30 * time.Second, Logger: rec.Logger()}))
	if err := rdb.LPush(ctx, q.Keys().Ready, "not a message").Err(); err != nil {
		t.Fatal(err)
	}
	stop := consume(t, q, func(context.Context, queue.Message) error { return nil })
	until(t, "malformed entry dead-lettered", func() bool { return stats(t, q).Dead == 1 })
	stop()
	rec.Want(t, 1, slog.LevelWarn, "malformed entry dead-lettered", "queue", "jobs")
}

// TestLoggerSeesConsumerBackoff: a consumer cut off from Redis logs once
// that it is backing off, however many retries fail, and once that it
// recovered.
func TestLoggerSeesConsumerBackoff(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	direct := srv.Client(t)
	proxy := faultproxy.New(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	var rec logtest.Recorder
	var failedTakes atomic.Int64
	q := newQueue(t, rdb, fast(queue.Options{LeaseTTL: 30 * time.Second, Logger: rec.Logger(),
		OnError: func(err error) {
			if strings.Contains(err.Error(), ": take: ") {
				failedTakes.Add(1)
			}
		}}))
	handled := make(chan string, 2)
	consume(t, q, func(_ context.Context, m queue.Message) error {
		handled <- string(m.Body)
		return nil
	})
	for _, body := range []string{"before", "after"} {
		if body == "after" {
			// Cut off only once "before" is acknowledged, so that it is
			// not delivered again.
			until(t, `"before" acknowledged`, func() bool {
				st := stats(t, q)
				return st.Ready == 0 && st.Processing == 0
			})
			proxy.Refuse(true)
			proxy.CutAll()
			until(t, "the consumer to fail 3 takes", func() bool { return failedTakes.Load() >= 3 })
			proxy.Refuse(false)
		}
		if _, err := q.Push(ctx, []byte(body)); err != nil {
			t.Fatalf("Push(%s): %v", body, err)
		}
		if got := <-handled; got != body {
			t.Fatalf("handled %q; want %q", got, body)
		}
	}
	rec.Want(t, 1, slog.LevelWarn, "consumer failing; backing off", "queue", "jobs")
	r := rec.Want(t, 1, slog.LevelInfo, "consumer recovered", "queue", "jobs")
	if n, _ := strconv.Atoi(r.Attrs["failures"]); n < 3 {
		t.Errorf("recovery %v; want 3 failures or more", r)
	}
	if n, _ := direct.LLen(ctx, q.Keys().Ready).Result(); n != 0 {
		t.Errorf("%d messages left ready; want 0", n)
	}
}

// TestLoggerSeesDrainLeaseLost: a Drain owner whose lease vanishes stops,
// and the lease's end is logged through the queue's Logger, with the
// queue's name.
func TestLoggerSeesDrainLeaseLost(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	var rec logtest.Recorder
	q := newQueue(t, rdb, fast(queue.Options{Logger: rec.Logger()}))
	if _, err := q.Push(ctx, []byte("m")); err != nil {
		t.Fatal(err)
	}
	key, _ := lease.Keys(q.Keys().LeasePrefix, "drain")
	err := q.Drain(ctx, func(ctx context.Context, _ queue.Message) error {
		rdb.Del(ctx, key) // the next renewal finds the lease gone
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second):
			return errors.New("the lease's loss never ended the handler's context")
		}
	})
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Drain = %v; want lease.ErrLost", err)
	}
	rec.Want(t, 1, slog.LevelWarn, "lease ended", "lease", "drain", "cause", lease.ErrLost.Error(), "queue", "jobs")
}
