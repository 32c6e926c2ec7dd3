package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/lease"
	"github.com/abacus-go/abacus/queue"
)

// ghost registers a consumer that holds msgs in its processing list (the
// first one oldest) and has no lease: a consumer that died.
func ghost(t *testing.T, rdb redis.UniversalClient, q *queue.Queue, id string, msgs ...[]byte) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.ZAdd(ctx, q.Keys().Consumers, redis.Z{Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := rdb.LPush(ctx, q.Keys().Processing(id), queue.Encode(queue.NewID(), m)).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func bodies(t *testing.T, rdb redis.UniversalClient, key string) []string {
	t.Helper()
	raw, err := rdb.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(raw))
	for i, r := range raw {
		_, b, err := queue.Decode([]byte(r))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out
}

func TestReclaim(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	q := newQueue(t, rdb, fast(queue.Options{MaxAttempts: 2, RetireAfter: 20 * time.Millisecond, BlockTimeout: time.Millisecond}))
	if _, err := q.Push(ctx, []byte("waiting")); err != nil {
		t.Fatal(err)
	}
	ghost(t, rdb, q, "dead", []byte("m1"), []byte("m2"))
	// A live consumer: its lease is held.
	ghost(t, rdb, q, "alive", []byte("mine"))
	l, err := lease.TryAcquire(ctx, rdb, "consumer:alive", time.Minute, lease.Options{KeyPrefix: q.Keys().LeasePrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)

	n, err := q.Reclaim(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Reclaim = %d, %v; want 2, nil", n, err)
	}
	// Reclaimed messages go to the head (right end), oldest next.
	if got := bodies(t, rdb, q.Keys().Ready); len(got) != 3 || got[0] != "waiting" || got[1] != "m2" || got[2] != "m1" {
		t.Fatalf("ready list = %v; want [waiting m2 m1]", got)
	}
	if got := bodies(t, rdb, q.Keys().Processing("alive")); len(got) != 1 {
		t.Fatalf("live consumer's list = %v; want untouched", got)
	}
	// The dead consumer stays registered (marked) until RetireAfter.
	until(t, "dead consumer unregistered", func() bool {
		if _, err := q.Reclaim(ctx); err != nil {
			t.Fatal(err)
		}
		err := rdb.ZScore(ctx, q.Keys().Consumers, "dead").Err()
		return errors.Is(err, redis.Nil)
	})
	if st := stats(t, q); st.Consumers != 1 {
		t.Fatalf("Consumers = %d; want 1 (the live one)", st.Consumers)
	}

	// A crash counts as a failed delivery: a second one dead-letters m1 and
	// m2 (MaxAttempts 2).
	for range 3 {
		rdb.RPopLPush(ctx, q.Keys().Ready, q.Keys().Processing("dead2"))
	}
	ghost(t, rdb, q, "dead2")
	if n, err := q.Reclaim(ctx); err != nil || n != 3 {
		t.Fatalf("second Reclaim = %d, %v; want 3", n, err)
	}
	if got := bodies(t, rdb, q.Keys().Dead); len(got) != 2 {
		t.Fatalf("dead letters = %v; want m1 and m2", got)
	}
}

// A consumer killed in this process (its lease released behind its back,
// as if it expired) has its messages reclaimed and redelivered to another
// consumer, with the same ID and Attempt 2.
func TestReclaimRedelivers(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	q := newQueue(t, rdb, fast(queue.Options{}))
	ghost(t, rdb, q, "crashed", []byte("held"))
	raw, _ := rdb.LRange(ctx, q.Keys().Processing("crashed"), 0, -1).Result()
	id, _, _ := queue.Decode([]byte(raw[0]))
	got := make(chan queue.Message, 1)
	consume(t, q, func(ctx context.Context, m queue.Message) error {
		got <- m
		return nil
	})
	m := <-got
	if m.ID != id || m.Attempt != 2 || string(m.Body) != "held" {
		t.Fatalf("redelivered %v attempt %d %q; want %v attempt 2 held", m.ID, m.Attempt, m.Body, id)
	}
}
