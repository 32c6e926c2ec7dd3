package serial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// newAllocator is New that fails the test on error and closes at cleanup.
func newAllocator(t testing.TB, rdb redis.UniversalClient, key string, opts Options) *Allocator {
	t.Helper()
	a, err := New(rdb, key, opts)
	if err != nil {
		t.Fatalf("New(%q, %+v): %v", key, opts, err)
	}
	t.Cleanup(func() {
		// Close waits for a fetch in flight: bound it, so that a test
		// whose Redis never answers cannot hang here.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Close(ctx)
	})
	return a
}

// fakeClock is a clock for Allocator.now that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// awaitFetches waits for the fetches in flight, if any, to land.
func awaitFetches(a *Allocator) {
	for {
		a.mu.Lock()
		c := a.inflight
		a.mu.Unlock()
		if c == nil {
			return
		}
		<-c.done
	}
}

// quiesce waits until a has no fetch in flight.
func quiesce(t testing.TB, a *Allocator) {
	t.Helper()
	redistest.WaitFor(t, "the fetch in flight", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.inflight == nil
	})
}

func TestNextIsSequentialOnAFreshKey(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	for _, size := range []int64{1, 7, 100} {
		t.Run(fmt.Sprintf("block=%d", size), func(t *testing.T) {
			a := newAllocator(t, rdb, redistest.Prefix(t)+"seq", Options{MinBlock: size, MaxBlock: size})
			for want := int64(1); want <= 1000; want++ {
				got, err := a.Next(ctx)
				if err != nil || got != want {
					t.Fatalf("Next() = %d, %v; want %d, nil", got, err, want)
				}
			}
		})
	}
}

func TestNextConcurrentAllocatorsNeverDuplicate(t *testing.T) {
	rdb := redistest.Client(t)
	key := redistest.Prefix(t) + "orders"
	const allocators, goroutines, perG = 3, 6, 20_000
	var all [allocators * goroutines][]int64
	var wg sync.WaitGroup
	for i := 0; i < allocators; i++ {
		a := newAllocator(t, rdb, key, Options{MinBlock: 16, MaxBlock: 4096, PrefetchThreshold: 0.3})
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func(slot int) {
				defer wg.Done()
				all[slot] = takeMixed(t, a, perG, 5, 7)
			}(i*goroutines + g)
		}
	}
	wg.Wait()
	seen := make(map[int64]int, allocators*goroutines*perG)
	for slot, ids := range all {
		for i, id := range ids {
			if i > 0 && id <= ids[i-1] {
				t.Fatalf("goroutine %d: ID %d after %d; want strictly increasing", slot, id, ids[i-1])
			}
			if prev, dup := seen[id]; dup {
				t.Fatalf("ID %d issued to goroutines %d and %d", id, prev, slot)
			}
			seen[id] = slot
		}
	}
}

// takeMixed takes at least n IDs from a, one at a time but for a NextN of
// batch every every-th call, and returns them in the order it got them.
func takeMixed(t *testing.T, a *Allocator, n, every, batch int) []int64 {
	ids := make([]int64, 0, n)
	for len(ids) < n {
		if len(ids)%every == 0 {
			got, err := a.NextN(context.Background(), batch)
			if err != nil {
				t.Errorf("NextN: %v", err)
				return ids
			}
			ids = append(ids, got...)
			continue
		}
		id, err := a.Next(context.Background())
		if err != nil {
			t.Errorf("Next: %v", err)
			return ids
		}
		ids = append(ids, id)
	}
	return ids
}

// TestNextHotPathDoesNotAllocate: with an ID at hand Next does not
// allocate; with Unordered a lane allocates a chunk per chunk of IDs
// (4096 here), not per Next.
func TestNextHotPathDoesNotAllocate(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { rdb.Close() })
	for _, unordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("Unordered=%v", unordered), func(t *testing.T) {
			a := newAllocator(t, rdb, "k", Options{Unordered: unordered})
			// A block installed by hand, without a trigger, keeps Redis out of it.
			a.cur.Store(&block{base: 1000, size: 1 << 40})
			ctx := context.Background()
			allocs := testing.AllocsPerRun(10_000, func() {
				if _, err := a.Next(ctx); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("Next allocs = %v; want 0", allocs)
			}
			if unordered {
				if held, st := heldByLanes(a), a.Stats(); held == 0 || st.Issued != 10_001 {
					t.Errorf("after 10,001 Next: lanes hold %d IDs, Stats().Issued = %d; want some held (the IDs came from lanes), 10,001 issued", held, st.Issued)
				}
				return
			}
			if got, _ := a.Next(ctx); got != 1000+10_002 {
				t.Errorf("Next() after 10,001 calls = %d; want %d", got, 1000+10_002)
			}
		})
	}
}

func TestBlockFillsOneCacheLine(t *testing.T) {
	// Every Next adds to used and reads base, size and trigger: one line,
	// shared with no other object (see block).
	if got := unsafe.Sizeof(block{}); got != 64 {
		t.Errorf("unsafe.Sizeof(block{}) = %d; want 64", got)
	}
}

func TestNextN(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	tests := []struct {
		name string
		size int64
		n    []int // successive NextN calls
	}{
		{"within a block", 100, []int{10, 20}},
		{"across blocks", 10, []int{25, 3, 40}},
		{"larger than MaxBlock", 8, []int{1000}},
		{"zero", 10, []int{0, 5, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t, rdb, redistest.Prefix(t)+"n", Options{MinBlock: tt.size, MaxBlock: tt.size})
			next := int64(1) // a fresh key and one allocator: IDs are contiguous
			for _, n := range tt.n {
				ids, err := a.NextN(ctx, n)
				if err != nil || len(ids) != n {
					t.Fatalf("NextN(%d) = %d IDs, %v; want %d, nil", n, len(ids), err, n)
				}
				for _, id := range ids {
					if id != next {
						t.Fatalf("NextN(%d) gave %d; want %d", n, id, next)
					}
					next++
				}
			}
			if got := a.Stats().Issued; got != next-1 {
				t.Errorf("Stats().Issued = %d; want %d", got, next-1)
			}
		})
	}
	t.Run("negative", func(t *testing.T) {
		a := newAllocator(t, rdb, redistest.Prefix(t)+"neg", Options{})
		if ids, err := a.NextN(ctx, -1); !errors.Is(err, ErrInvalid) || ids != nil {
			t.Errorf("NextN(-1) = %v, %v; want nil, ErrInvalid", ids, err)
		}
	})
}

func TestBlockSizeAdaptsToRate(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	a := newAllocator(t, rdb, redistest.Prefix(t)+"adapt", Options{
		MinBlock: 100, MaxBlock: 10_000, TargetLifetime: 10 * time.Second,
		PrefetchThreshold: 0.5,
	})
	a.now = clock.Now
	// issue takes n IDs, advancing the fake clock by perID for each. It
	// lets each fetch land before the next ID, so that no fake time passes
	// during a fetch: the rate alone sizes the blocks.
	issue := func(n int, perID time.Duration) {
		t.Helper()
		for i := 0; i < n; i++ {
			clock.Advance(perID)
			if _, err := a.Next(ctx); err != nil {
				t.Fatalf("Next: %v", err)
			}
			awaitFetches(a)
		}
	}
	phases := []struct {
		name   string
		n      int
		perID  time.Duration
		check  func(size int64) bool
		expect string
	}{
		// 10,000 IDs/s × 10s wants 100,000: grows ×4 per block up to MaxBlock.
		{"busy grows to MaxBlock", 40_000, 100 * time.Microsecond, func(s int64) bool { return s == 10_000 }, "10000"},
		// 1 ID/s wants 10: shrinks ×½ per block down to MinBlock.
		{"idle shrinks to MinBlock", 25_000, time.Second, func(s int64) bool { return s == 100 }, "100"},
		// 100 IDs/s wants 1,000.
		{"steady settles on rate × target", 20_000, 10 * time.Millisecond, func(s int64) bool { return s >= 800 && s <= 1250 }, "about 1000"},
	}
	for _, p := range phases {
		t.Run(p.name, func(t *testing.T) {
			issue(p.n, p.perID)
			quiesce(t, a)
			if st := a.Stats(); !p.check(st.BlockSize) {
				t.Errorf("BlockSize after %d IDs at %v each = %d; want %s", p.n, p.perID, st.BlockSize, p.expect)
			}
		})
	}
}

// slowIncr is a go-redis hook that advances a fake clock by took during
// each INCRBY: a fetch that takes that long as the allocator measures it.
type slowIncr struct {
	clock *fakeClock
	took  time.Duration
}

var _ redis.Hook = slowIncr{}

func (h slowIncr) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h slowIncr) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "incrby" {
			h.clock.Advance(h.took)
		}
		return next(ctx, cmd)
	}
}

func (h slowIncr) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestSlowFetchesStartEarlierAndGrowBlocks: when a fetch takes 1s (as
// when its goroutine waits for a CPU behind busy callers), the next fetch
// starts with 4 × 1s of IDs in hand at the measured rate, earlier than
// PrefetchThreshold would, and blocks hold twice that, more than
// TargetLifetime asks.
func TestSlowFetchesStartEarlierAndGrowBlocks(t *testing.T) {
	base := redistest.Client(t)
	rdb := redis.NewClient(base.Options())
	t.Cleanup(func() { rdb.Close() })
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	rdb.AddHook(slowIncr{clock: clock, took: time.Second})
	a := newAllocator(t, rdb, redistest.Prefix(t)+"slow", Options{
		MinBlock: 20_000, MaxBlock: 10_000_000, TargetLifetime: time.Second,
		PrefetchThreshold: 0.25, Replicas: -1,
	})
	a.now = clock.Now
	ctx := context.Background()
	// 10,000 IDs/s, each fetch awaited so that no ID is issued while the
	// fake clock jumps. The first block, 20,000, triggers at 15,000, where
	// the rate is measured: TargetLifetime wants 10,000, the 1s fetch twice
	// its cover of 4 × 10,000 IDs/s × 1s, 80,000 (the ×4 growth cap).
	for i := 0; i < 20_001; i++ {
		clock.Advance(100 * time.Microsecond)
		if _, err := a.Next(ctx); err != nil {
			t.Fatalf("Next #%d: %v", i+1, err)
		}
		awaitFetches(a)
	}
	st := a.Stats()
	if st.FetchTime != time.Second || st.Issued != 20_001 {
		t.Errorf("Stats() = %+v; want FetchTime 1s, Issued 20001", st)
	}
	// The threshold alone would trigger the second block with a quarter
	// of it, 20,000, left; the cover (40,002 at the 10,000.7 IDs/s measured
	// over 14,999 intervals) must be left instead.
	c := cover(st.Rate, st.FetchTime)
	if b := a.cur.Load(); b.size != 80_000 || b.size-b.trigger != c || c < 40_000 || c > 40_010 {
		t.Errorf("second block: size %d, trigger %d, cover %d; want 80000, 80000 - cover, about 40000", b.size, b.trigger, c)
	}
}

func TestNextHonoursContextWhileWaiting(t *testing.T) {
	// Every dial blocks until the test ends, so no block can ever arrive:
	// a Next that returns at all has returned because of its context.
	release := make(chan struct{})
	rdb := redis.NewClient(&redis.Options{
		Addr:        "blackhole:6379",
		DialTimeout: time.Hour,
		MaxRetries:  -1,
		Dialer: func(ctx context.Context, _, _ string) (net.Conn, error) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-release:
				return nil, errors.New("blackhole released")
			}
		},
	})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(func() { unblock(); rdb.Close() })
	a := newAllocator(t, rdb, "k", Options{})

	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := a.Next(ctx)
			errc <- err
		}()
		redistest.WaitFor(t, "the caller to wait", func() bool { return a.Stats().Waits >= 1 })
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Next() error = %v; want context.Canceled", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := a.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Next() error = %v; want context.DeadlineExceeded", err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if ids, err := a.NextN(ctx, 3); !errors.Is(err, context.Canceled) || len(ids) != 0 {
			t.Errorf("NextN() = %v, %v; want none, context.Canceled", ids, err)
		}
	})
	if st := a.Stats(); st.RoundTrips != 0 || st.Issued != 0 {
		t.Errorf("Stats() = %+v; want no round trip completed and nothing issued", st)
	}
	// Close waits for the fetch in flight, which only the end of the test
	// ends: it must give up when its context does.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a fetch that never ends = %v; want context.DeadlineExceeded", err)
	}
	unblock() // the fetch fails now, and the cleanup's Close returns at once
}

func TestClose(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	a := newAllocator(t, rdb, redistest.Prefix(t)+"close", Options{})
	if _, err := a.Next(ctx); err != nil {
		t.Fatalf("Next: %v", err)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	if id, err := a.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Next() after Close = %d, %v; want ErrClosed", id, err)
	}
	if _, err := a.NextN(ctx, 2); !errors.Is(err, ErrClosed) {
		t.Errorf("NextN() after Close error = %v; want ErrClosed", err)
	}
	if err := a.Resume(ctx, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Resume() after Close = %v; want ErrClosed", err)
	}
}
