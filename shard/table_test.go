package shard

import (
	"fmt"
	"runtime"
	"strings"
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
	// A holder of the deleted counter loses nothing: it is still taken.
	old.Add(2)
	fresh := tab.Get("w@1")
	if fresh == old {
		t.Fatal("Get after Delete returned the deleted counter")
	}
	fresh.Add(1)
	var total int64
	tab.Take(func(c *Counter, d int64) { tab.Settle(c, d); total += d })
	if total != 8 {
		t.Fatalf("took %d; want 8 (5+2 from the deleted counter, 1 from the new)", total)
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
// keeps deleting: every Add is taken, from the table's counter or a
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
	take := func() { tab.Take(func(c *Counter, d int64) { tab.Settle(c, d); total += d }) }
	took := make(chan struct{})
	go func() { // the flusher, taking while the writers and the deleter run
		defer close(took)
		for {
			select {
			case <-stop:
				return
			default:
				take()
			}
		}
	}()
	wg.Wait()
	close(stop)
	n := <-deleted
	<-took
	take()
	if total != writers*adds {
		t.Fatalf("took %d; want %d (with %d deletes racing)", total, writers*adds, n)
	}
}

// TestFirstAddsFromManyGoroutinesAreTakenOnce has goroutines make the
// first Adds after a take at the same time, pushing onto the table's dirty
// lists together: every counter is taken once, with every Add.
func TestFirstAddsFromManyGoroutinesAreTakenOnce(t *testing.T) {
	const names, goroutines = 1000, 16
	tab := NewTable(0)
	counters := make([]*Counter, names)
	for i := range counters {
		counters[i] = tab.Get(fmt.Sprint("n", i))
	}
	for round := range 20 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range counters {
					// Each goroutine walks the counters from a different start.
					counters[(i+g*names/goroutines)%names].Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		taken := make(map[*Counter]int, names)
		tab.Take(func(c *Counter, d int64) {
			tab.Settle(c, d)
			taken[c]++
			if d != goroutines {
				t.Errorf("round %d: %s took %d; want %d", round, c.Name(), d, goroutines)
			}
		})
		for _, c := range counters {
			if taken[c] != 1 {
				t.Fatalf("round %d: %s taken %d times; want once", round, c.Name(), taken[c])
			}
		}
	}
}

// TestNamesWithOneHash forces every name into one probe chain, with a hash
// whose keys are zero and names whose first word is zero: the probe must
// tell names apart by their bytes, and walk past tombstones.
func TestNamesWithOneHash(t *testing.T) {
	tab := NewTable(0)
	tab.hash = nameHash{}
	names := []string{"\x00\x00\x00\x00\x00\x00\x00\x00a", "\x00\x00\x00\x00\x00\x00\x00\x00b", "\x00\x00\x00\x00\x00\x00\x00\x00c"}
	for _, name := range names[1:] {
		if h := tab.hash.sum(name); h != tab.hash.sum(names[0]) {
			t.Fatalf("hash(%q) = %#x; want the hash of %q, %#x", name, h, names[0], tab.hash.sum(names[0]))
		}
	}
	counters := map[*Counter]string{}
	for _, name := range names {
		counters[tab.Get(name)] = name
	}
	if len(counters) != len(names) {
		t.Fatalf("%d names with one hash share %d counters", len(names), len(counters))
	}
	if !tab.Delete(names[1]) {
		t.Fatalf("Delete(%q) = false", names[1])
	}
	for _, name := range []string{names[0], names[2]} {
		if c := tab.Lookup(name); c == nil || counters[c] != name {
			t.Fatalf("Lookup(%q) after deleting %q found %v", name, names[1], c)
		}
	}
	if tab.Lookup(names[1]) != nil {
		t.Fatalf("Lookup(%q) found a deleted name", names[1])
	}
}

// TestNameFoundWhateverItsBytes: a name built afresh (its own bytes) finds
// the counter created from another copy of it.
func TestNameFoundWhateverItsBytes(t *testing.T) {
	tab := NewTable(0)
	for _, n := range []int{1, 5, 12, 16, 17, 40} {
		name := strings.Repeat("x", n)
		c := tab.Get(name)
		again := string([]byte(name))
		if tab.Get(again) != c || tab.Lookup(again) != c {
			t.Errorf("%d-byte name: a copy of it did not find its counter", n)
		}
	}
}
