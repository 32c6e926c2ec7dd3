package queue

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/logtest"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/lease"
)

// A Drain owner whose lease expired and was taken over can neither move
// nor acknowledge: its scripts fail with ErrFenced, change nothing, and
// are logged.
func TestDrainStaleOwnerFenced(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	var rec logtest.Recorder
	q, err := New(rdb, "jobs", Options{Prefix: redistest.Prefix(t), Logger: rec.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Push(ctx, []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	old, err := lease.TryAcquire(ctx, rdb, drainLease, time.Minute, q.leaseOptions(0))
	if err != nil {
		t.Fatal(err)
	}
	stale := q.newDrainer(old)
	raw, _, err := stale.take(ctx)
	if err != nil || string(raw[headerLen:]) != "a" {
		t.Fatalf("owner take = %q, %v; want a", raw, err)
	}
	// The lease key vanishes (as at expiry) and a new owner takes over.
	rdb.Del(ctx, old.Key())
	cur, err := lease.TryAcquire(ctx, rdb, drainLease, time.Minute, q.leaseOptions(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Release(ctx)
	if _, _, err := stale.take(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale take = %v; want ErrFenced", err)
	}
	if err := stale.settle(ctx, "a", raw, 0); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale ack = %v; want ErrFenced", err)
	}
	rec.Want(t, 2, slog.LevelWarn, "drain owner fenced off; stopping", "queue", "jobs", "fence", stale.fence, "step", "settle")
	// The new owner gets the message the stale one had, not a newer one.
	raw2, _, err := q.newDrainer(cur).take(ctx)
	if err != nil || string(raw2) != string(raw) {
		t.Fatalf("new owner take = %q, %v; want the stale owner's %q", raw2, err, raw)
	}
	if cur.Fence() <= old.Fence() {
		t.Fatalf("fences %d then %d; want increasing", old.Fence(), cur.Fence())
	}
	// Same token but an outdated fence is refused too.
	stale2 := q.newDrainer(cur)
	stale2.fence = strconv.FormatInt(old.Fence(), 10)
	if _, _, err := stale2.take(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("take with old fence = %v; want ErrFenced", err)
	}
}
