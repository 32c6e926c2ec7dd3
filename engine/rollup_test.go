package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/lease"
	"github.com/abacus-go/abacus/queue"
)

func TestParseWindowRecord(t *testing.T) {
	tests := []struct {
		in   string
		want engine.WindowRecord
		ok   bool
	}{
		{`{"name":"a\"b","start_ms":60000,"size_ms":60000,"total":9007199254740993}`, engine.WindowRecord{Name: `a"b`, StartMS: 60000, SizeMS: 60000, Total: 9007199254740993}, true},
		{`nope`, engine.WindowRecord{}, false},
	}
	for _, tt := range tests {
		got, err := engine.ParseWindowRecord([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseWindowRecord(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// While another process holds the rollup lease, a Rollup publishes
// nothing; once the lease is free it takes over and publishes each due
// window once.
func TestRollupOnlyLeaseHolderFinalizes(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
	e := newEngine(t, rdb, engine.Options{Namespace: prefix, FlushInterval: 10 * time.Millisecond, Now: clk.Now})
	w, err := e.Windowed("orders", engine.WindowOptions{Size: time.Minute, Queue: "q", QueuePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	w.Add(41)
	w.Add(1)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	keys := queue.KeysFor(prefix, "q")
	pending := keys.Ready[:len(keys.Ready)-len("ready")] + "windows:pending"
	redistest.WaitFor(t, "window registered", func() bool { return rdb.ZCard(ctx, pending).Val() == 1 })
	clk.Set(clk.Now().Add(2 * time.Minute))

	other, err := lease.TryAcquire(ctx, rdb, "rollup", time.Minute, lease.Options{KeyPrefix: keys.Ready[:len(keys.Ready)-len("ready")] + "rollup:"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.StartRollup(ctx, engine.RollupOptions{Queue: "q", QueuePrefix: prefix, Grace: time.Second, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	if r.Owner() || r.Finalized() != 0 || rdb.LLen(ctx, keys.Ready).Val() != 0 {
		t.Fatalf("a Rollup without the lease: Owner %v, Finalized %d, queue %d; want nothing done",
			r.Owner(), r.Finalized(), rdb.LLen(ctx, keys.Ready).Val())
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, "window finalized after the lease was freed", func() bool { return r.Finalized() == 1 })
	recs, _ := published(t, rdb, keys.Ready)
	if len(recs) != 1 || recs[0].Total != 42 || recs[0].Name != "orders" {
		t.Fatalf("published %+v; want one record of orders with total 42", recs)
	}
}

// Close stops the engine's Rollups, releasing the rollup lease for another
// process, and no Rollup starts after it.
func TestCloseStopsRollups(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: prefix})
	r, err := e.StartRollup(ctx, engine.RollupOptions{Queue: "q", QueuePrefix: prefix, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, "the rollup lease taken", r.Owner)
	closeOrFail(t, e)
	if r.Owner() {
		t.Fatal("Rollup still owns the lease after Close")
	}
	keys := queue.KeysFor(prefix, "q")
	l, err := lease.TryAcquire(ctx, rdb, "rollup", time.Minute, lease.Options{KeyPrefix: keys.Ready[:len(keys.Ready)-len("ready")] + "rollup:"})
	if err != nil {
		t.Fatalf("rollup lease not released by Close: %v", err)
	}
	l.Release(ctx)
	if _, err := e.StartRollup(ctx, engine.RollupOptions{Queue: "q", QueuePrefix: prefix}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("StartRollup after Close = %v; want ErrClosed", err)
	}
}
