package shard

import (
	"fmt"
	"runtime"
	"testing"
)

// settleAll takes from t and settles every delta, as a flush that succeeded.
func settleAll(t *Table) {
	t.Take(func(c *Counter, n int64) { t.Settle(c, n) })
}

func TestSweepIdleEvictsOnlyIdleUnpinnedCleanCounters(t *testing.T) {
	tb := NewTable(0)
	idle := tb.Get("idle")
	idle.Add(1)
	pinnedC := tb.Get("pinned")
	pinnedC.Pin()
	busy := tb.Get("busy")
	unflushed := tb.Get("unflushed")
	inflight := tb.Get("inflight")
	settleAll(tb) // idle, pinned, busy: clean
	unflushed.Add(5)
	inflight.Add(7)
	tb.Take(func(c *Counter, n int64) {}) // inflight: 7 in flight, never settled

	for round := range 3 {
		busy.Add(1)
		settleAll(tb)
		tb.SweepIdle(tableShards)
		_ = round
	}
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"idle", false}, {"pinned", true}, {"busy", true}, {"unflushed", true}, {"inflight", true},
	} {
		if got := tb.Lookup(tc.name) != nil; got != tc.want {
			t.Errorf("after 3 sweeps, Lookup(%s) found = %v; want %v", tc.name, got, tc.want)
		}
	}
	if tb.Len() != 4 {
		t.Errorf("Len = %d; want 4", tb.Len())
	}
	// A handle on an evicted counter still reaches the dirty list.
	idle.Add(3)
	var got int64
	tb.Take(func(c *Counter, n int64) {
		if c == idle {
			got = n
		}
	})
	if got != 3 {
		t.Fatalf("Add on an evicted counter took %d; want 3", got)
	}
}

func TestNewCounterSurvivesOneSweep(t *testing.T) {
	tb := NewTable(0)
	tb.Get("new")
	tb.SweepIdle(tableShards)
	if tb.Lookup("new") == nil {
		t.Fatal("a counter created just before a sweep was evicted by it")
	}
	tb.SweepIdle(tableShards)
	if tb.Lookup("new") != nil {
		t.Fatal("a counter idle for two sweeps was kept")
	}
}

func TestDiscardDropsOnlyTheUntakenDelta(t *testing.T) {
	tb := NewTable(0)
	c := tb.Get("k")
	c.Add(5)
	tb.Take(func(*Counter, int64) {}) // 5 in flight
	c.Add(3)
	if got := c.Discard(); got != 3 {
		t.Fatalf("Discard = %d; want 3", got)
	}
	if c.Unflushed() != 5 || c.InFlight() != 5 {
		t.Fatalf("after Discard: Unflushed %d, InFlight %d; want 5, 5", c.Unflushed(), c.InFlight())
	}
}

// TestRotatingNamesKeepMemoryFlat runs rotatingNames names through the
// table, 10,000 at a time, each added to once and flushed, sweeping a
// shard per batch as a flusher would: the table and the heap stay flat.
func TestRotatingNamesKeepMemoryFlat(t *testing.T) {
	const batch = 10_000
	tb := NewTable(0)
	var ms runtime.MemStats
	heapAfter := func() uint64 {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var base uint64
	maxLen := 0
	for i := 0; i < rotatingNames; i += batch {
		for j := i; j < i+batch; j++ {
			tb.Get(fmt.Sprintf("user:%d", j)).Add(1)
		}
		settleAll(tb)
		tb.SweepIdle(8)
		maxLen = max(maxLen, tb.Len())
		if i == rotatingNames/5 {
			base = heapAfter()
		}
	}
	final := heapAfter()
	runtime.KeepAlive(tb)
	t.Logf("%d names: at most %d counters in the table; heap %d KiB after a fifth of them, %d KiB at the end",
		rotatingNames, maxLen, base>>10, final>>10)
	if maxLen > 30*batch {
		t.Errorf("table held %d counters of %d rotating names; want about 16 batches of %d at most", maxLen, rotatingNames, batch)
	}
	if final > 2*base+8<<20 {
		t.Errorf("heap grew from %d KiB to %d KiB over %d rotating names", base>>10, final>>10, rotatingNames)
	}
}
