package serial

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// TestUnorderedNeverDuplicates runs Unordered Allocators beside an ordered
// one on one key, from more goroutines than lanes, with blocks just large
// enough for lanes to take chunks of them (of minChunk IDs), so that the
// lanes refill from many blocks.
func TestUnorderedNeverDuplicates(t *testing.T) {
	rdb := redistest.Client(t)
	key := redistest.Prefix(t) + "orders"
	const goroutines, perG = 24, 20_000
	opts := Options{MinBlock: 64, MaxBlock: 8192, PrefetchThreshold: 0.3}
	unordered := Options{MinBlock: lanedBlock(), MaxBlock: lanedBlock(), PrefetchThreshold: 0.3, Unordered: true}
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
	for i, a := range allocators[:2] {
		// One more ID, from a lane's chunk: the lanes were in use.
		if _, err := a.Next(context.Background()); err != nil {
			t.Fatalf("allocator %d: Next: %v", i, err)
		}
		if held := heldByLanes(a); held == 0 {
			t.Errorf("allocator %d: its lanes hold no ID after Next; want a chunk of blocks of %d", i, lanedBlock())
		}
	}
}

// TestUnorderedCloseEndsLanes checks that the chunks lanes hold stop
// issuing at Close, as the block does.
func TestUnorderedCloseEndsLanes(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	size := 64 * lanedBlock() // chunks of 4096 (maxChunk), and room for every lane's
	a := newAllocator(t, rdb, redistest.Prefix(t)+"close", Options{MinBlock: size, MaxBlock: size, Unordered: true})
	// The first ID comes from the block itself (the lanes cannot take a
	// chunk of the empty block before it); later ones from the lanes.
	if _, err := a.Next(ctx); err != nil {
		t.Fatalf("Next: %v", err)
	}
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
	if held := heldByLanes(a); held == 0 {
		t.Fatalf("lanes hold no ID before Close; want the rest of their chunks")
	}
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if held := heldByLanes(a); held != 0 {
		t.Errorf("lanes hold %d IDs after Close; want none", held)
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

func TestChunkSize(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { rdb.Close() })
	a := newAllocator(t, rdb, "k", Options{Unordered: true})
	perLane := 2 * int64(len(a.lanes)) // a block is shared among twice as many lanes
	tests := []struct {
		size, want int64
	}{
		{0, 1},
		{perLane - 1, 1},
		{minChunk*perLane - 1, minChunk - 1},
		{minChunk * perLane, minChunk},
		{100*perLane + perLane - 1, 100},
		{maxChunk * perLane, maxChunk},
		{1 << 40, maxChunk},
	}
	for _, tt := range tests {
		if got := a.chunkSize(&block{size: tt.size}); got != tt.want {
			t.Errorf("chunkSize(block of %d) with %d lanes = %d; want %d", tt.size, len(a.lanes), got, tt.want)
		}
	}
}

// lanedBlock is the smallest block whose chunks (2 per lane) are of
// minChunk IDs: the IDs of smaller blocks bypass the lanes (see
// nextUnordered). It depends on GOMAXPROCS, as the lanes do.
func lanedBlock() int64 {
	return 2 * minChunk * int64(len(newLanes()))
}

// heldByLanes is how many IDs a's lanes hold: claimed from a block, not
// issued yet.
func heldByLanes(a *Allocator) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.heldLocked()
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
