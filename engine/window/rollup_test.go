package window_test

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/engine/window"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/lease"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		in   string
		want window.Record
		ok   bool
	}{
		{`{"name":"a\"b","start_ms":60000,"size_ms":60000,"total":9007199254740993}`, window.Record{Name: `a"b`, StartMS: 60000, SizeMS: 60000, Total: 9007199254740993}, true},
		{`nope`, window.Record{}, false},
	}
	for _, tt := range tests {
		got, err := window.ParseRecord([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRecord(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestFinalizedOnce: closed windows are published once each with their
// exact total (beyond 2^53, which a Lua number would round), an open one
// is not, and a late writer registering a published window again does not
// publish it again.
func TestFinalizedOnce(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: 10 * time.Millisecond})
	w, err := window.New(e, "pv:/home", window.Options{Size: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Now().Truncate(time.Second).Add(-time.Minute)
	t2 := t1.Add(time.Second)
	open := time.Now().Add(time.Hour)
	w.AddAt(t1, 3)
	w.AddAt(t2, 1<<53)
	w.AddAt(t2.Add(500*time.Millisecond), 1)
	w.AddAt(open, 7)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := w.Value(ctx, t2); err != nil || v != 1<<53+1 {
		t.Fatalf("Value(window 2) = %d, %v; want 2^53+1", v, err)
	}
	q := newQueue(t, rdb, ns, "pv")
	r := startRollup(t, e, q, window.RollupOptions{Grace: 100 * time.Millisecond, Interval: 5 * time.Millisecond})
	redistest.WaitFor(t, "windows 1 and 2 finalized", func() bool { return r.Finalized() == 2 })

	recs, ids := published(t, rdb, q)
	want := []window.Record{
		{Name: "pv:/home", StartMS: t1.UnixMilli(), SizeMS: 1000, Total: 3},
		{Name: "pv:/home", StartMS: t2.UnixMilli(), SizeMS: 1000, Total: 1<<53 + 1},
	}
	if len(recs) != 2 || recs[0] != want[0] || recs[1] != want[1] {
		t.Fatalf("published %+v; want %+v", recs, want)
	}
	for i, rec := range recs {
		if id := window.MessageID(rec.Name, rec.StartMS, rec.SizeMS); ids[i] != id {
			t.Fatalf("record %d has ID %v; want MessageID %v", i, ids[i], id)
		}
		if ttl := rdb.PTTL(ctx, w.Key(rec.Start())).Val(); ttl <= 0 {
			t.Fatalf("window key %s has PTTL %v after finalization; want the retention", w.Key(rec.Start()), ttl)
		}
	}

	// A late writer registers window 1 again: it counts in the key but is
	// not published again.
	e2 := newEngine(t, rdb, engine.Options{Namespace: ns})
	w2, _ := window.New(e2, "pv:/home", window.Options{Size: time.Second})
	w2.AddAt(t1, 1)
	if err := e2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, "the late registration dropped", func() bool {
		n, _ := rdb.ZCard(ctx, ns+"{"+window.DefaultGroup+"}windows:pending").Result()
		return n == 1 // the open window only
	})
	closeRollup(t, r)
	if recs, _ := published(t, rdb, q); len(recs) != 2 || r.Finalized() != 2 {
		t.Fatalf("after a late registration: %d records, Finalized %d; want 2, 2", len(recs), r.Finalized())
	}
	if v, _ := rdb.Get(ctx, w.Key(t1)).Int64(); v != 4 {
		t.Fatalf("window 1 in Redis = %d; want 4 (the late delta counts in the key)", v)
	}
}

// TestResumesAHolderThatDiedMidway: a holder that fixed a window's total
// and died before marking it published leaves the next holder to publish
// the total it fixed, under the same ID, even though the key has grown.
func TestResumesAHolderThatDiedMidway(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns})
	w, _ := window.New(e, "orders", window.Options{Size: time.Minute})
	t0 := time.Now().Truncate(time.Minute).Add(-time.Hour)
	w.AddAt(t0, 10)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// What the dead holder left: the marker with the total it fixed (9,
	// not the 10 now in the key).
	rdb.Set(ctx, w.Key(t0)+":final", "p:9", time.Hour)
	q := newQueue(t, rdb, ns, "q")
	r := startRollup(t, e, q, window.RollupOptions{Interval: 5 * time.Millisecond})
	redistest.WaitFor(t, "the window published", func() bool { return r.Finalized() == 1 })
	recs, ids := published(t, rdb, q)
	if len(recs) != 1 || recs[0].Total != 9 || ids[0] != window.MessageID("orders", t0.UnixMilli(), time.Minute.Milliseconds()) {
		t.Fatalf("published %+v %v; want one record with the fixed total 9 under the window's ID", recs, ids)
	}
	if m := rdb.Get(ctx, w.Key(t0)+":final").Val(); m != "d:9" {
		t.Fatalf("marker = %q; want d:9", m)
	}
}

// TestOnlyLeaseHolderFinalizes: while another process holds the rollup
// lease, a Rollup publishes nothing; once the lease is free it takes over.
func TestOnlyLeaseHolderFinalizes(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: 10 * time.Millisecond})
	w, _ := window.New(e, "orders", window.Options{Size: time.Minute, Group: "g"})
	t0 := time.Now().Add(-time.Hour)
	w.AddAt(t0, 41)
	w.AddAt(t0, 1)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	other, err := lease.TryAcquire(ctx, rdb, window.LeaseName("g"), time.Minute, lease.Options{KeyPrefix: ns + "lease:"})
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, rdb, ns, "q")
	r := startRollup(t, e, q, window.RollupOptions{Group: "g", Grace: time.Second, Interval: 5 * time.Millisecond})
	time.Sleep(50 * time.Millisecond) // give it a chance to misbehave; the check below holds at any speed
	if r.Owner() || r.Finalized() != 0 || rdb.LLen(ctx, q.Keys().Ready).Val() != 0 {
		t.Fatalf("a Rollup without the lease: Owner %v, Finalized %d, queue %d; want nothing done",
			r.Owner(), r.Finalized(), rdb.LLen(ctx, q.Keys().Ready).Val())
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, "the window finalized after the lease was freed", func() bool { return r.Finalized() == 1 })
	if recs, _ := published(t, rdb, q); len(recs) != 1 || recs[0].Total != 42 || recs[0].Name != "orders" {
		t.Fatalf("published %+v; want one record of orders with total 42", recs)
	}
	closeRollup(t, r)
	l, err := lease.TryAcquire(ctx, rdb, window.LeaseName("g"), time.Minute, lease.Options{KeyPrefix: ns + "lease:"})
	if err != nil {
		t.Fatalf("rollup lease not released by Close: %v", err)
	}
	l.Release(ctx)
}
