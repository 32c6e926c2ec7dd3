package serial

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// failoverLoad is four allocators on one key, two goroutines each, taking
// IDs at a steady pace and recording them, until halted.
type failoverLoad struct {
	as   []*Allocator
	stop atomic.Bool
	wg   sync.WaitGroup

	mu       sync.Mutex
	ids      [][]int64      // guarded by mu; per goroutine, once halted
	errs     map[string]int // guarded by mu; Next errors by kind
	lastErr  error          // guarded by mu
	maxStall time.Duration  // guarded by mu; longest a goroutine went without an ID
}

// failoverOptions are default Options but for MaxBlock: at the load's 8,000
// IDs/s per allocator, blocks of at most 1,000 make every allocator fetch
// about 8 times a second, so fetches are in flight whenever a master dies,
// and the reserve (64 blocks) lasts 8 s.
var failoverOptions = Options{MaxBlock: 1000}

func startFailoverLoad(t *testing.T, rdb redis.UniversalClient, key string) *failoverLoad {
	t.Helper()
	l := &failoverLoad{errs: make(map[string]int)}
	for range 4 {
		a := newAllocator(t, rdb, key, failoverOptions)
		l.as = append(l.as, a)
		for range 2 {
			l.wg.Add(1)
			go l.take(a)
		}
	}
	return l
}

// take issues 4 IDs a millisecond until halted; an error is counted and
// retried 10 ms later, the way an application would.
func (l *failoverLoad) take(a *Allocator) {
	defer l.wg.Done()
	ctx := context.Background()
	ids := make([]int64, 0, 1<<16)
	last := time.Now()
	for !l.stop.Load() {
		for range 4 {
			id, err := a.Next(ctx)
			if err != nil {
				kind := "other"
				switch {
				case errors.Is(err, ErrNotReplicated):
					kind = "not replicated"
				case errors.Is(err, ErrRegression):
					kind = "regression"
				}
				l.mu.Lock()
				l.errs[kind]++
				l.lastErr = err
				l.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
				continue
			}
			now := time.Now()
			if d := now.Sub(last); len(ids) > 0 && d > 50*time.Millisecond {
				l.mu.Lock()
				l.maxStall = max(l.maxStall, d)
				l.mu.Unlock()
			}
			last = now
			ids = append(ids, id)
		}
		time.Sleep(time.Millisecond)
	}
	l.mu.Lock()
	l.ids = append(l.ids, ids)
	l.mu.Unlock()
}

// recovered waits until every allocator has had a block acknowledged
// since the failover: the new master has a replica again. Meanwhile the
// allocators live on what they hold.
func (l *failoverLoad) recovered(t *testing.T) {
	t.Helper()
	from := make([]int64, len(l.as))
	for i, a := range l.as {
		from[i] = a.Stats().Blocks
	}
	redistest.WaitFor(t, "blocks acknowledged after the failover", func() bool {
		for i, a := range l.as {
			if st := a.Stats(); st.Failing > 0 || st.Blocks == from[i] {
				return false
			}
		}
		return true
	})
}

// progress waits until every allocator has issued n more IDs.
func (l *failoverLoad) progress(t *testing.T, n int64) {
	t.Helper()
	from := make([]int64, len(l.as))
	for i, a := range l.as {
		from[i] = a.Stats().Issued
	}
	redistest.WaitFor(t, "the allocators to issue IDs", func() bool {
		for i, a := range l.as {
			if a.Stats().Issued < from[i]+n {
				return false
			}
		}
		return true
	})
}

// runway returns the shortest Runway among the allocators, and its InHand.
func (l *failoverLoad) runway() string {
	least := l.as[0].Stats()
	for _, a := range l.as[1:] {
		if st := a.Stats(); st.Runway < least.Runway {
			least = st
		}
	}
	return fmt.Sprintf("runway %v (%d IDs in hand, %d blocks ahead)", least.Runway.Round(time.Millisecond), least.InHand, least.Ahead)
}

// halt stops the load and checks that no ID was issued twice and that each
// goroutine's IDs increase.
func (l *failoverLoad) halt(t *testing.T) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	var all []int64
	for _, ids := range l.ids {
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Errorf("ID %d after %d in one goroutine; want increasing", ids[i], ids[i-1])
				break
			}
		}
		all = append(all, ids...)
	}
	slices.Sort(all)
	dups := 0
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			dups++
		}
	}
	var st Stats
	for _, a := range l.as {
		s := a.Stats()
		st.Blocks += s.Blocks
		st.RoundTrips += s.RoundTrips
		st.Unreplicated += s.Unreplicated
		st.FetchErrors += s.FetchErrors
		st.Waits += s.Waits
		st.Regressions += s.Regressions
	}
	t.Logf("%d IDs, %d duplicates; %d blocks in %d round trips, %d fetch errors (%d unreplicated), %d regressions; "+
		"callers that waited for Redis %d, longest gap between a goroutine's IDs %v; Next errors %v (last: %v)",
		len(all), dups, st.Blocks, st.RoundTrips, st.FetchErrors, st.Unreplicated, st.Regressions,
		st.Waits, l.maxStall.Round(time.Millisecond), l.errs, l.lastErr)
	if dups != 0 {
		t.Errorf("%d duplicate IDs among %d; want none", dups, len(all))
	}
	if st.Regressions != 0 {
		t.Errorf("%d regressions; want none: every block used was acknowledged by the replica promoted", st.Regressions)
	}
}

// TestSentinelFailoversNeverDuplicate kills the master of a Sentinel group
// (one replica) three times under load: what the killed master had not
// replicated is lost, yet no ID is issued twice with default Options.
func TestSentinelFailoversNeverDuplicate(t *testing.T) {
	if testing.Short() {
		t.Skip("three Sentinel failovers take tens of seconds")
	}
	g := redistest.StartSentinel(t, redistest.SentinelOptions{})
	rdb := g.Client(t)
	l := startFailoverLoad(t, rdb, redistest.Prefix(t)+"orders")
	l.progress(t, 4000)
	for k := 1; k <= 3; k++ {
		start := time.Now()
		rw := l.runway()
		g.KillMaster(t)
		took := time.Since(start)
		l.recovered(t)
		t.Logf("failover %d took %v, blocks acknowledged again after %v; before it, the shortest %s",
			k, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), rw)
		l.progress(t, 4000)
	}
	l.halt(t)
}

// TestClusterFailoversNeverDuplicate kills the master of the key's slot
// range in a Redis Cluster with a replica per master three times under
// load: no ID is issued twice with default Options.
func TestClusterFailoversNeverDuplicate(t *testing.T) {
	if testing.Short() {
		t.Skip("three Cluster failovers take tens of seconds")
	}
	c := redistest.StartCluster(t, redistest.ClusterOptions{Replicas: 1})
	rdb := c.Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "orders"
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	r := -1
	for i := range 3 { // the default number of masters, hence of ranges
		if first, last := c.Slots(i); int64(first) <= slot && slot <= int64(last) {
			r = i
			break
		}
	}
	l := startFailoverLoad(t, rdb, key)
	l.progress(t, 4000)
	for k := 1; k <= 3; k++ {
		start := time.Now()
		rw := l.runway()
		c.KillMaster(t, r)
		took := time.Since(start)
		l.recovered(t)
		t.Logf("failover %d of slot range %d took %v, blocks acknowledged again after %v; before it, the shortest %s",
			k, r, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), rw)
		l.progress(t, 4000)
	}
	l.halt(t)
}
