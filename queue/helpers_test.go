package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/queue"
)

// newQueue returns a queue with a name unique to the test, failing on error.
func newQueue(t testing.TB, rdb redis.UniversalClient, o queue.Options) *queue.Queue {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = redistest.Prefix(t)
	}
	q, err := queue.New(rdb, "jobs", o)
	if err != nil {
		t.Fatalf("queue.New: %v", err)
	}
	return q
}

// fast are options that make leases, blocking and reclaiming quick enough
// for tests.
func fast(o queue.Options) queue.Options {
	if o.LeaseTTL == 0 {
		o.LeaseTTL = time.Second
	}
	if o.BlockTimeout == 0 {
		o.BlockTimeout = 50 * time.Millisecond
	}
	if o.ReclaimInterval == 0 {
		o.ReclaimInterval = 100 * time.Millisecond
	}
	if o.RetireAfter == 0 {
		o.RetireAfter = 500 * time.Millisecond
	}
	return o
}

// until polls cond until it holds, failing after a generous limit that only
// a hung test reaches: it guards progress, not speed.
func until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for limit := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(limit) {
			t.Fatalf("still waiting for %s", what)
		}
	}
}

// consume runs q.Consume(h) in the background and returns a function that
// stops it and waits for it.
func consume(t testing.TB, q *queue.Queue, h queue.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Consume(ctx, h) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

func stats(t testing.TB, q *queue.Queue) queue.Stats {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}
