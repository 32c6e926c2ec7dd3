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

// TestColdKeyMemory measures the heap cost of a million cold keys, each
// with one Add: the design budget is 200 bytes per key.
func TestColdKeyMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million counters")
	}
	const n = 1_000_000
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
