package window_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/engine/window"
	"github.com/abacus-go/abacus/queue"
)

func newEngine(t testing.TB, rdb redis.UniversalClient, opts engine.Options) *engine.Engine {
	t.Helper()
	e, err := engine.New(rdb, opts)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close(ctx)
	})
	return e
}

func newQueue(t testing.TB, rdb redis.UniversalClient, prefix, name string) *queue.Queue {
	t.Helper()
	q, err := queue.New(rdb, name, queue.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("queue.New: %v", err)
	}
	return q
}

func startRollup(t testing.TB, e *engine.Engine, q *queue.Queue, opts window.RollupOptions) *window.Rollup {
	t.Helper()
	r, err := window.StartRollup(context.Background(), e, q, opts)
	if err != nil {
		t.Fatalf("StartRollup: %v", err)
	}
	t.Cleanup(func() { closeRollup(t, r) })
	return r
}

func closeRollup(t testing.TB, r *window.Rollup) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Errorf("Rollup.Close: %v", err)
	}
}

// published reads every record on q's ready list, oldest first, with its
// message ID, without taking them.
func published(t testing.TB, rdb redis.UniversalClient, q *queue.Queue) (recs []window.Record, ids []queue.ID) {
	t.Helper()
	raw, err := rdb.LRange(context.Background(), q.Keys().Ready, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(raw) - 1; i >= 0; i-- {
		id, body, err := queue.Decode([]byte(raw[i]))
		if err != nil {
			t.Fatal(err)
		}
		r, err := window.ParseRecord(body)
		if err != nil {
			t.Fatal(err)
		}
		recs, ids = append(recs, r), append(ids, id)
	}
	return recs, ids
}
