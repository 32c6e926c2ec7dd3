package shard

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func TestCounterIsOneCacheLine(t *testing.T) {
	if got := unsafe.Sizeof(Counter{}); got != cacheLine {
		t.Fatalf("Sizeof(Counter) = %d; want %d", got, cacheLine)
	}
}

func TestAddTakeSettleRestore(t *testing.T) {
	tab := NewTable(0)
	c := tab.Get("k")
	c.Add(5)
	c.Add(-2)
	if got := c.Load(); got != 3 {
		t.Fatalf("Load() = %d; want 3", got)
	}
	take := func() (n int64) {
		tab.Take(func(got *Counter, d int64) {
			if got != c {
				t.Fatalf("Take handed out %q; want only %q", got.Name(), c.Name())
			}
			n += d
		})
		return n
	}
	if got := take(); got != 3 {
		t.Fatalf("took %d; want 3", got)
	}
	if got, want := c.InFlight(), int64(3); got != want {
		t.Fatalf("InFlight() = %d; want %d", got, want)
	}
	c.Add(10)
	if got := c.Unflushed(); got != 13 {
		t.Fatalf("Unflushed() = %d; want 13", got)
	}
	tab.Restore(c, 3)
	if got := c.Unflushed(); got != 13 || c.InFlight() != 0 {
		t.Fatalf("after Restore(c, 3): Unflushed() = %d, InFlight() = %d; want 13, 0", got, c.InFlight())
	}
	if got := take(); got != 13 {
		t.Fatalf("second take = %d; want 13 (10 added + 3 restored)", got)
	}
	tab.Settle(c, 13)
	if got := c.Unflushed(); got != 0 || c.InFlight() != 0 {
		t.Fatalf("after Settle(c, 13): Unflushed() = %d, InFlight() = %d; want 0, 0", got, c.InFlight())
	}
}

// TestSettleOfAnotherTablesCounterPanics: a table accounts only for its
// own counters.
func TestSettleOfAnotherTablesCounterPanics(t *testing.T) {
	mine, other := NewTable(0), NewTable(0)
	c := other.Get("k")
	c.Add(1)
	other.Take(func(*Counter, int64) {})
	for _, tc := range []struct {
		name string
		call func()
	}{
		{"Settle", func() { mine.Settle(c, 1) }},
		{"Restore", func() { mine.Restore(c, 1) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s of another table's counter did not panic", tc.name)
				}
			}()
			tc.call()
		}()
	}
	if got := c.InFlight(); got != 1 {
		t.Fatalf("InFlight() = %d after refused calls; want 1", got)
	}
}

func TestZeroDeltaIsNotReported(t *testing.T) {
	tab := NewTable(0)
	c := tab.Get("k")
	c.Add(4)
	c.Add(-4)
	if got := takeAll(tab); len(got) != 0 {
		t.Fatalf("take of a counter summing to 0 reported %v; want nothing", got)
	}
	c.Add(1)
	if got := takeAll(tab)["k"]; got != 1 {
		t.Fatalf("take after re-dirtying = %d; want 1", got)
	}
}

func TestContentionGrowsStripesUpToCapWithoutLoss(t *testing.T) {
	tab := NewTable(8)
	c := tab.Get("hot")
	var want int64
	for i := 0; i < 10; i++ {
		// Force the slow path as a sampled contention check would.
		c.contended(c.stripes.Load())
		c.Add(int64(i))
		want += int64(i)
	}
	if got := c.Stripes(); got != 8 {
		t.Fatalf("Stripes() = %d; want the cap 8", got)
	}
	if got := c.Load(); got != want {
		t.Fatalf("Load() = %d; want %d", got, want)
	}
	if got := takeAll(tab)["hot"]; got != want {
		t.Fatalf("took %d; want %d", got, want)
	}
	if got := c.Load(); got != 0 {
		t.Fatalf("Load() after a take = %d; want 0 (retired stripes emptied too)", got)
	}
}

// TestConcurrentAddsAndTakesLoseNothing hammers a few counters from many
// goroutines while a flusher takes, settles and sometimes restores: the
// totals taken plus what is left must equal exactly what was added.
func TestConcurrentAddsAndTakesLoseNothing(t *testing.T) {
	const (
		writers = 16
		adds    = 20000
		keys    = 8
	)
	tab := NewTable(0)
	names := make([]string, keys)
	for i := range names {
		names[i] = string(rune('a' + i))
	}
	var added [writers][keys]int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < adds; i++ {
				k := r.IntN(keys)
				d := r.Int64N(201) - 100
				tab.Get(names[k]).Add(d)
				added[w][k] += d
			}
		}()
	}
	flushed := map[string]int64{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := rand.New(rand.NewPCG(7, 7))
		for {
			tab.Take(func(c *Counter, d int64) {
				if r.IntN(4) == 0 { // a failed write: give it back
					tab.Restore(c, d)
					return
				}
				tab.Settle(c, d)
				flushed[c.Name()] += d
			})
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	for k, d := range takeAll(tab) {
		flushed[k] += d
	}
	for k, name := range names {
		var want int64
		for w := range added {
			want += added[w][k]
		}
		if flushed[name] != want {
			t.Errorf("key %s: flushed %d; want %d", name, flushed[name], want)
		}
		if c := tab.Lookup(name); c.Unflushed() != 0 {
			t.Errorf("key %s: Unflushed() = %d after the final take; want 0", name, c.Unflushed())
		}
	}
}

// TestContentionGrowsStripes runs Adds to one counter on every P until
// Add's sampled check sees them contend and the counter grows stripes.
func TestContentionGrowsStripes(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	if procs < 2 {
		t.Skip("Adds contend only from two Ps at once")
	}
	c := NewTable(0).Get("hot")
	var stop atomic.Bool
	var added atomic.Int64
	var wg sync.WaitGroup
	for range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int64
			for !stop.Load() {
				c.Add(1)
				n++
			}
			added.Add(n)
		}()
	}
	// The goroutines must run at the same time, which a busy machine may
	// delay, but not for long.
	for deadline := time.Now().Add(time.Minute); c.Stripes() == 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if c.Stripes() == 1 {
		t.Fatalf("%d Adds from %d goroutines in a minute; Stripes() = 1, want more", added.Load(), procs)
	}
	if got, want := c.Load(), added.Load(); got != want {
		t.Fatalf("Load() = %d; want %d", got, want)
	}
}

// TestSampledAtItsRateForEveryDelta: whatever the delta, the values a
// cell goes through reach Add's contention check about once in
// 2^sampleBits adds, so no delta hides contention.
func TestSampledAtItsRateForEveryDelta(t *testing.T) {
	const adds = 1 << 16
	want := adds >> sampleBits
	for _, delta := range []int64{1, -1, 2, 3, 7, 64, -64, 100, 1000, 4096, 1 << 20, 1<<40 + 7, -(1 << 33)} {
		hits := 0
		v := int64(12345)
		for range adds {
			v += delta
			if sampled(v) {
				hits++
			}
		}
		if hits < want/2 || hits > want*2 {
			t.Errorf("delta %d: %d of %d values sampled; want about %d", delta, hits, adds, want)
		}
	}
}

func TestMaxStripesOneKeepsOneCell(t *testing.T) {
	c := NewTable(1).Get("k")
	c.contended(nil)
	c.Add(2)
	if got := c.Stripes(); got != 1 {
		t.Fatalf("NewTable(1): Stripes() after contention = %d; want 1", got)
	}
	if got := c.Load(); got != 2 {
		t.Fatalf("Load() = %d; want 2", got)
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	tab := NewTable(0)
	c := tab.Get("k")
	if n := testing.AllocsPerRun(1000, func() { c.Add(1) }); n != 0 {
		t.Fatalf("Add allocates %.1f times per call; want 0", n)
	}
	striped := tab.Get("striped")
	striped.contended(nil)
	if n := testing.AllocsPerRun(1000, func() { striped.Add(1) }); n != 0 {
		t.Fatalf("striped Add allocates %.1f times per call; want 0", n)
	}
}

// takeAll takes from tab, settling everything, and returns the deltas by name.
func takeAll(tab *Table) map[string]int64 {
	got := map[string]int64{}
	tab.Take(func(c *Counter, d int64) {
		tab.Settle(c, d)
		got[c.Name()] += d
	})
	return got
}
