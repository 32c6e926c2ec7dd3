package shard

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

func TestGetReturnsOneCounterPerName(t *testing.T) {
	tab := NewTable(0)
	if c := tab.Lookup("x"); c != nil {
		t.Fatalf("Lookup(x) on an empty table = %v; want nil", c)
	}
	a, b := tab.Get("x"), tab.Get("x")
	if a != b {
		t.Fatal("Get(x) twice returned two counters")
	}
	if tab.Lookup("x") != a {
		t.Fatal("Lookup(x) did not return the counter Get created")
	}
	if tab.Get("") == a {
		t.Fatal("distinct names share a counter")
	}
}

func TestConcurrentGetCreatesEachNameOnce(t *testing.T) {
	const names, goroutines = 5000, 8
	tab := NewTable(0)
	got := make([][]*Counter, goroutines)
	var wg sync.WaitGroup
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[g] = make([]*Counter, names)
			for i := range names {
				// Each goroutine walks the names from a different start.
				j := (i + g*977) % names
				got[g][j] = tab.Get(fmt.Sprint("n", j))
			}
		}()
	}
	wg.Wait()
	if tab.Len() != names {
		t.Fatalf("Len() = %d; want %d", tab.Len(), names)
	}
	for i := range names {
		for g := 1; g < goroutines; g++ {
			if got[g][i] != got[0][i] {
				t.Fatalf("name n%d: goroutines 0 and %d got different counters", i, g)
			}
		}
	}
	seen := 0
	tab.Range(func(*Counter) bool { seen++; return true })
	if seen != names {
		t.Fatalf("Range visited %d counters; want %d", seen, names)
	}
}

// TestColdKeyMemory measures the heap cost of a million cold keys (a
// tenth of that under the race detector, see coldKeys), each with one Add:
// the design budget is 200 bytes per key.
func TestColdKeyMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million counters")
	}
	const n = coldKeys
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("pv:/page/%07d", i)
	}
	before := heapInUse()
	tab := NewTable(0)
	for _, name := range names {
		tab.Get(name).Add(1)
	}
	after := heapInUse()
	runtime.KeepAlive(tab)
	// The names were allocated before measuring; the table keeps them but
	// does not copy them, so this is the cost the table adds per key.
	perKey := float64(after-before) / n
	t.Logf("%d cold keys: %.0f bytes/key in the table (plus the name strings)", n, perKey)
	if perKey > 200 {
		t.Fatalf("cold keys cost %.0f bytes each; want ≤ 200", perKey)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestDelete(t *testing.T) {
	tab := NewTable(0)
	old := tab.Get("w@1")
	old.Add(5)
	if !tab.Delete("w@1") {
		t.Fatal("Delete(w@1) = false; want true")
	}
	if tab.Delete("w@1") {
		t.Fatal("second Delete(w@1) = true; want false")
	}
	if c := tab.Lookup("w@1"); c != nil {
		t.Fatal("Lookup after Delete found the counter")
	}
	if tab.Len() != 0 {
		t.Fatalf("Len() = %d after Delete; want 0", tab.Len())
	}
	// A holder of the deleted counter loses nothing: it is still drained.
	old.Add(2)
	fresh := tab.Get("w@1")
	if fresh == old {
		t.Fatal("Get after Delete returned the deleted counter")
	}
	fresh.Add(1)
	var total int64
	tab.Drain(func(c *Counter, d int64) { c.Settle(d); total += d })
	if total != 8 {
		t.Fatalf("drained %d; want 8 (5+2 from the deleted counter, 1 from the new)", total)
	}
}

// TestDeleteKeepsTheTableSmall cycles 300,000 names through the table,
// at most 1,000 alive at a time: tombstones must be dropped on growth, so
// the slot arrays stay sized for the live names.
func TestDeleteKeepsTheTableSmall(t *testing.T) {
	tab := NewTable(0)
	const live, total = 1000, 300_000
	if testing.Short() {
		t.Skip("cycles 300,000 names")
	}
	for i := range total {
		tab.Get(fmt.Sprint("n", i))
		if i >= live && !tab.Delete(fmt.Sprint("n", i-live)) {
			t.Fatalf("Delete(n%d) = false", i-live)
		}
	}
	if tab.Len() != live {
		t.Fatalf("Len() = %d; want %d", tab.Len(), live)
	}
	slots := 0
	for i := range tab.shards {
		if p := tab.shards[i].slots.Load(); p != nil {
			slots += len(*p)
		}
	}
	if slots > 8*live {
		t.Fatalf("%d slots for %d live names; tombstones are not reclaimed", slots, live)
	}
	for i := total - live; i < total; i++ {
		if tab.Lookup(fmt.Sprint("n", i)) == nil {
			t.Fatalf("live name n%d not found", i)
		}
	}
}

// TestConcurrentDeleteLosesNothing adds to names that another goroutine
// keeps deleting: every Add is drained, from the table's counter or a
// deleted one.
func TestConcurrentDeleteLosesNothing(t *testing.T) {
	tab := NewTable(0)
	const writers, adds = 4, 20000
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range adds {
				tab.Get(fmt.Sprint("n", i%10)).Add(1)
			}
		}()
	}
	stop := make(chan struct{})
	deleted := make(chan int)
	go func() {
		n := 0
		for i := 0; ; i++ {
			select {
			case <-stop:
				deleted <- n
				return
			default:
			}
			if tab.Delete(fmt.Sprint("n", i%10)) {
				n++
			}
		}
	}()
	var total int64
	drain := func() { tab.Drain(func(c *Counter, d int64) { c.Settle(d); total += d }) }
	drained := make(chan struct{})
	go func() { // the flusher, draining while the writers and the deleter run
		defer close(drained)
		for {
			select {
			case <-stop:
				return
			default:
				drain()
			}
		}
	}()
	wg.Wait()
	close(stop)
	n := <-deleted
	<-drained
	drain()
	if total != writers*adds {
		t.Fatalf("drained %d; want %d (with %d deletes racing)", total, writers*adds, n)
	}
}
