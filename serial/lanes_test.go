package serial

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/abacus-go/abacus/internal/redistest"
)

// TestUnorderedNeverDuplicates runs Unordered Allocators beside an ordered
// one on one key, from more goroutines than lanes, with blocks small
// enough that lanes refill from many of them.
func TestUnorderedNeverDuplicates(t *testing.T) {
	rdb := redistest.Client(t)
	key := redistest.Prefix(t) + "orders"
	const goroutines, perG = 24, 20_000
	opts := Options{MinBlock: 64, MaxBlock: 8192, PrefetchThreshold: 0.3}
	unordered := opts
	unordered.Unordered = true
	allocators := []*Allocator{
		newAllocator(t, rdb, key, unordered),
		newAllocator(t, rdb, key, unordered),
		newAllocator(t, rdb, key, opts),
	}
	all := make([][]int64, len(allocators)*goroutines)
	var wg sync.WaitGroup
	for i, a := range allocators {
		for g := range goroutines {
			wg.Add(1)
			go func(slot int) {
				defer wg.Done()
				all[slot] = takeMixed(t, a, perG, 7, 3)
			}(i*goroutines + g)
		}
	}
	wg.Wait()
	var ids []int64
	taken := make([]int64, len(allocators))
	for slot, s := range all {
		if len(s) < perG {
			t.Fatalf("goroutine %d took %d IDs; want %d", slot, len(s), perG)
		}
		ids = append(ids, s...)
		taken[slot/goroutines] += int64(len(s))
	}
	assertUnique(t, ids)
	for i, a := range allocators {
		if st := a.Stats(); st.Issued != taken[i] {
			t.Errorf("allocator %d: Stats().Issued = %d; want the %d IDs it returned (not those its lanes hold)", i, st.Issued, taken[i])
		}
	}
}

// TestUnorderedCloseEndsLanes checks that the chunks lanes hold stop
// issuing at Close, as the block does.
func TestUnorderedCloseEndsLanes(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	a := newAllocator(t, rdb, redistest.Prefix(t)+"close", Options{MinBlock: 1 << 20, Unordered: true})
	var wg sync.WaitGroup
	for range 16 { // fill several lanes' chunks
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Next(ctx); err != nil {
				t.Errorf("Next: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if id, err := a.Next(ctx); !errors.Is(err, ErrClosed) {
				t.Errorf("Next() after Close = %d, %v; want ErrClosed", id, err)
			}
		}()
	}
	wg.Wait()
}

func assertUnique(t *testing.T, ids []int64) {
	t.Helper()
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if id < 1 || seen[id] {
			t.Fatalf("ID %d issued twice or below 1", id)
		}
		seen[id] = true
	}
}
