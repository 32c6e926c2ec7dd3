package engine_test

import (
	"context"
	"testing"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestCounterWithRegisters: a counter with CounterOptions.Register adds
// its member to the set with the flush that writes it, also when the
// counter was forgotten before that flush; other counters register
// nothing.
func TestCounterWithRegisters(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: 1 << 62})
	set := ns + "index"
	a, err := e.CounterWith("a", engine.CounterOptions{Register: &flush.Registration{Set: set, Member: "a", Score: 1}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.CounterWith("b", engine.CounterOptions{Register: &flush.Registration{Set: set, Member: "b", Score: 2}})
	plain, _ := e.Counter("plain")
	a.Add(1)
	b.Add(2)
	plain.Add(3)
	if n := rdb.ZCard(ctx, set).Val(); n != 0 {
		t.Fatalf("%d members before any flush; want 0", n)
	}
	if !e.Forget("b") {
		t.Fatal("Forget(b) = false; want true")
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := rdb.ZRange(ctx, set, 0, -1).Result()
	if err != nil || len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("set after the flush = %v, %v; want [a b]", got, err)
	}
	if v, _ := rdb.Get(ctx, ns+"b").Int64(); v != 2 {
		t.Fatalf("forgotten counter b in Redis = %d; want 2", v)
	}
}
