package lease

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// checker watches critical sections from outside the lease: it sees every
// entry and exit, so it notices two holders at once and fences out of order.
type checker struct {
	mu          sync.Mutex
	inside      int   // guarded by mu; holders now in the critical section
	entries     int   // guarded by mu
	overlaps    int   // guarded by mu; entries while someone was inside
	disordered  int   // guarded by mu; entries whose fence was not above the last
	first, last int64 // guarded by mu; fences of the first and latest entries
}

func (c *checker) enter(fence int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inside++
	if c.inside > 1 {
		c.overlaps++
	}
	if c.entries > 0 && fence <= c.last {
		c.disordered++
	}
	if c.entries == 0 {
		c.first = fence
	}
	c.last = fence
	c.entries++
}

func (c *checker) exit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inside--
}

func TestMutualExclusion(t *testing.T) {
	c0 := redistest.Client(t)
	clients := []redis.UniversalClient{c0}
	for range 3 {
		clients = append(clients, sibling(t, c0))
	}
	hammer(t, clients, redistest.Prefix(t))
}

func TestMutualExclusionCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-master Redis Cluster")
	}
	cluster := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	var clients []redis.UniversalClient
	for range 4 {
		clients = append(clients, cluster.Client(t))
	}
	hammer(t, clients, redistest.Prefix(t))
}

// hammer runs 16 goroutines over the clients, contending for one lease
// through 2,000 acquisitions with auto-renewal, and checks that critical
// sections never overlap and fences rise in acquisition order.
//
// The TTL is long and the holds short: exclusion rests on the key, not on
// the TTL, and a short TTL would only make a holder starved on a busy
// machine lose its lease (no fault here should end one). The watchdog
// renews often instead, and every holdEvery-th holder keeps the lease
// until it has renewed twice, so renewal under contention is checked too.
func hammer(t *testing.T, clients []redis.UniversalClient, prefix string) {
	const (
		goroutines = 16
		total      = 2000
		ttl        = 10 * time.Second
		renewEvery = 10 * time.Millisecond
		holdEvery  = 250
	)
	o := Options{
		KeyPrefix:     prefix,
		AutoRenew:     true,
		RenewInterval: renewEvery,
		MinRetryDelay: 200 * time.Microsecond,
		MaxRetryDelay: 3 * time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		chk                 checker
		claimed             atomic.Int64
		renewals, attempts  atomic.Int64
		endedInside, failed atomic.Int64
		wg                  sync.WaitGroup
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rdb := clients[g%len(clients)]
			for {
				n := claimed.Add(1)
				if n > total {
					return
				}
				l, err := Acquire(ctx, rdb, "hot", ttl, o)
				if err != nil {
					t.Errorf("Acquire #%d: %v", n, err)
					failed.Add(1)
					return
				}
				chk.enter(l.Fence())
				if n%holdEvery == 0 {
					// Bounded by the TTL: without renewals the lease
					// ends, and endedInside reports it.
					for l.Stats().Renewals < 2 && l.Err() == nil {
						time.Sleep(time.Millisecond)
					}
				}
				if l.Err() != nil {
					endedInside.Add(1)
				}
				chk.exit()
				st := l.Stats()
				renewals.Add(st.Renewals)
				attempts.Add(st.Attempts)
				if err := l.Release(ctx); err != nil {
					t.Errorf("Release #%d (fence %d): %v", n, l.Fence(), err)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	chk.mu.Lock()
	defer chk.mu.Unlock()
	t.Logf("%d acquisitions, %d attempts, %d renewals", chk.entries, attempts.Load(), renewals.Load())
	if chk.entries != total || chk.overlaps != 0 || chk.disordered != 0 {
		t.Errorf("entries, overlaps, disordered fences = %d, %d, %d; want %d, 0, 0",
			chk.entries, chk.overlaps, chk.disordered, total)
	}
	// No faults here, so every fence was issued to exactly one acquisition.
	if got := chk.last - chk.first + 1; got != total {
		t.Errorf("fences %d..%d span %d; want %d", chk.first, chk.last, got, total)
	}
	if n := endedInside.Load(); n != 0 {
		t.Errorf("%d leases ended inside their critical section; want 0", n)
	}
	if got, want := renewals.Load(), int64(2*total/holdEvery); got < want {
		t.Errorf("%d renewals; want at least %d, two in each long hold", got, want)
	}
}
