package serial

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// cmdCounter is a go-redis hook counting the commands a client sends, alone
// or in pipelines, by name.
type cmdCounter struct {
	mu sync.Mutex
	n  map[string]int64 // guarded by mu
}

var _ redis.Hook = (*cmdCounter)(nil)

func (h *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

func (h *cmdCounter) count(cmd redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = make(map[string]int64)
	}
	h.n[cmd.Name()]++
}

func (h *cmdCounter) get(name string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[name]
}

// countedClient returns a new client for srv with a cmdCounter hook.
func countedClient(t *testing.T, srv *redistest.Server) (*redis.Client, *cmdCounter) {
	t.Helper()
	rdb := srv.Client(t)
	h := &cmdCounter{}
	rdb.AddHook(h)
	return rdb, h
}

// settle waits until a has no fetch in flight and wants none: the blocks it
// holds ahead cover its reserve.
func settle(t testing.TB, a *Allocator) {
	t.Helper()
	redistest.WaitFor(t, "the allocator to fill its reserve", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.inflight == nil && a.retry == nil && !a.wantsBlockLocked()
	})
}

// TestDefaultWaitsOnlyWithAReplica: with zero Options, every block is
// followed by a WAIT when the master has a replica, and by none when it has
// none. Commands are counted on the client.
func TestDefaultWaitsOnlyWithAReplica(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		start    func(t *testing.T) *redistest.Server
		wantWait bool
	}{
		{"no replica", func(t *testing.T) *redistest.Server { return redistest.Start(t, redistest.Options{}) }, false},
		{"one replica", func(t *testing.T) *redistest.Server { m, _ := startReplicated(t); return m }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb, h := countedClient(t, tt.start(t))
			key := redistest.Prefix(t) + "ids"
			a := newAllocator(t, rdb, key, Options{})
			if _, err := a.NextN(ctx, 1000); err != nil {
				t.Fatalf("NextN: %v", err)
			}
			settle(t, a)
			st := a.Stats()
			incrs, waits := h.get("incrby"), h.get("wait")
			if incrs != st.RoundTrips || st.RoundTrips != st.Blocks || st.Blocks < 2 {
				t.Errorf("INCRBYs sent %d, RoundTrips %d, Blocks %d; want equal and ≥ 2", incrs, st.RoundTrips, st.Blocks)
			}
			wantWaits, wantReplicas := int64(0), 0
			if tt.wantWait {
				wantWaits, wantReplicas = incrs, 1
			}
			if waits != wantWaits || st.Replicas != wantReplicas {
				t.Errorf("WAITs sent %d, Stats().Replicas %d; want %d, %d", waits, st.Replicas, wantWaits, wantReplicas)
			}
			// Auto mode asks the master for its replicas before the first
			// block, and at most every 5s after that while it has none.
			if n := h.get("info"); n != 1 {
				t.Errorf("INFO sent %d times; want 1", n)
			}
			t.Logf("%d blocks, %d INCRBY, %d WAIT; %d blocks ahead, %d IDs in hand", st.Blocks, incrs, waits, st.Ahead, st.InHand)
		})
	}
}

// TestUnacknowledgedBlockIsNotIssued stops the only replica under an
// allocator holding acknowledged blocks: the blocks fetched meanwhile are
// not acknowledged and never issued, Next goes on issuing exactly the
// acknowledged IDs in hand, then returns a *ReplicationError; once the
// replica is back, it issues above every discarded block.
func TestUnacknowledgedBlockIsNotIssued(t *testing.T) {
	master, replica := startReplicated(t)
	rdb := master.Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "ids"
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	// Blocks of 10 at 100 IDs/s (by the fake clock): the default 60s
	// reserve wants 6,000 IDs and holds the most it may, 64 blocks.
	a := newAllocator(t, rdb, key, Options{MinBlock: 10, MaxBlock: 10, ReplicaTimeout: 500 * time.Millisecond})
	a.now = clock.Now
	next := func() (int64, error) {
		clock.Advance(10 * time.Millisecond)
		return a.Next(ctx)
	}
	var issued []int64
	for range 25 {
		id, err := next()
		if err != nil {
			t.Fatalf("Next with the replica up: %v", err)
		}
		issued = append(issued, id)
	}
	settle(t, a)
	before := a.Stats()
	if before.Rate <= 0 || before.Runway != time.Duration(float64(before.InHand)/before.Rate*float64(time.Second)) {
		t.Errorf("Stats() Rate %v, Runway %v; want a rate, and InHand %d lasting Runway at it", before.Rate, before.Runway, before.InHand)
	}
	if before.Ahead != maxReserveBlocks || before.Replicas != 1 || before.Unreplicated != 0 {
		t.Fatalf("Stats() = %+v; want %d blocks ahead, Replicas 1, nothing unreplicated", before, maxReserveBlocks)
	}

	replica.Stop()
	var rerr *ReplicationError
	for {
		id, err := next()
		if errors.As(err, &rerr) {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d IDs with the replica down: %v; want IDs, then a *ReplicationError", len(issued), err)
		}
		if id > before.HighWater {
			t.Fatalf("Next() = %d with the replica down; want only acknowledged IDs, ≤ %d", id, before.HighWater)
		}
		issued = append(issued, id)
	}
	after := a.Stats()
	if got := int64(len(issued)) - before.Issued; got != before.InHand {
		t.Errorf("issued %d IDs with the replica down; want the %d in hand", got, before.InHand)
	}
	if rerr.Want != 1 || rerr.Acked != 0 || !strings.Contains(rerr.Op, strconv.Quote(key)) {
		t.Errorf("ReplicationError = %+v; want Want 1, Acked 0, an Op naming key %q", rerr, key)
	}
	if after.Unreplicated < 1 || after.FetchErrors < after.Unreplicated || after.Failing < 1 || after.InHand != 0 || after.HighWater != before.HighWater {
		t.Errorf("Stats() = %+v; want blocks unreplicated and failing, none in hand, HighWater %d", after, before.HighWater)
	}
	// The refused blocks were granted by the master, just not used: its
	// value is at or above the end of every block discarded so far.
	discarded, err := rdb.Get(ctx, key).Int64()
	if err != nil || discarded <= before.HighWater {
		t.Errorf("master GET %s = %d, %v; want above HighWater %d", key, discarded, err, before.HighWater)
	}

	replica.Restart()
	waitOnline(t, rdb)
	id, err := next()
	if err != nil || id <= discarded {
		t.Fatalf("Next() with the replica back = %d, %v; want above the discarded blocks, ending at or below %d", id, err, discarded)
	}
	issued = append(issued, id)
	assertUniqueIncreasing(t, issued)
	t.Logf("in hand when the replica stopped: %d IDs; then %d fetches unacknowledged; resumed at %d (discarded up to %d)",
		before.InHand, after.Unreplicated, id, discarded)
}

// switchboard dials the address it was last pointed at and, when pointed
// elsewhere, closes the connections it made, as a Sentinel client does when
// the master changes.
type switchboard struct {
	mu    sync.Mutex
	addr  string     // guarded by mu
	conns []net.Conn // guarded by mu
}

func (s *switchboard) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	s.mu.Lock()
	addr := s.addr
	s.mu.Unlock()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr != addr { // switched while dialling
		c.Close()
		return nil, errors.New("switchboard: switched")
	}
	s.conns = append(s.conns, c)
	return c, nil
}

func (s *switchboard) switchTo(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addr = addr
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *switchboard) client(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: "switchboard", Dialer: s.dial})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLossyFailoverNeverDuplicates replays the failover that loses writes:
// the replica stops receiving the master's writes (here it is promoted with
// REPLICAOF NO ONE, so it keeps exactly what it had), allocators go on
// fetching blocks from the old master, which is then killed, and clients
// switch to the promoted replica, whose counter is behind blocks the old
// master granted. Four allocators under load, and a fifth started after the
// switch (its high water is 0, so it can detect nothing), must issue no ID
// twice with default Options. The same run with Replicas -1 shows what
// the test catches: the fifth allocator reissues IDs the old master granted.
func TestLossyFailoverNeverDuplicates(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		dups bool
	}{
		{"default options", Options{MinBlock: 100, MaxBlock: 100}, false},
		{"never wait (control)", Options{MinBlock: 100, MaxBlock: 100, Replicas: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lossyFailover(t, tt.opts, tt.dups)
		})
	}
}

func lossyFailover(t *testing.T, opts Options, wantDups bool) {
	master, replica := startReplicated(t)
	sb := &switchboard{addr: master.Addr}
	rdb := sb.client(t)
	key := redistest.Prefix(t) + "orders"
	ctx := context.Background()

	const allocators, goroutines = 4, 2
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      [][]int64 // per goroutine; guarded by mu at the end
		notRepl  atomic.Int64
		otherErr atomic.Int64
		lastErr  atomic.Value
	)
	// take issues IDs until stop (or limit IDs, if positive), at a steady
	// pace (16 per millisecond) if paced, retrying after errors the way an
	// application would.
	take := func(a *Allocator, limit int, paced bool) {
		defer wg.Done()
		var ids []int64
		for !stop.Load() && (limit == 0 || len(ids) < limit) {
			for range 16 {
				id, err := a.Next(ctx)
				switch {
				case errors.Is(err, ErrNotReplicated):
					notRepl.Add(1)
					time.Sleep(10 * time.Millisecond)
				case err != nil:
					otherErr.Add(1)
					lastErr.Store(err.Error())
					time.Sleep(10 * time.Millisecond)
				default:
					ids = append(ids, id)
				}
			}
			if paced {
				time.Sleep(time.Millisecond)
			}
		}
		mu.Lock()
		all = append(all, ids)
		mu.Unlock()
	}
	var as []*Allocator
	for range allocators {
		a := newAllocator(t, rdb, key, opts)
		as = append(as, a)
		for range goroutines {
			wg.Add(1)
			go take(a, 0, true)
		}
	}
	time.Sleep(500 * time.Millisecond)

	// The replica stops following the master: from here the master's
	// writes are lost at the failover.
	rc := replica.Client(t)
	if err := rc.SlaveOf(ctx, "no", "one").Err(); err != nil {
		t.Fatal(err)
	}
	// As a master it syncs its own replica at once, not after 5s.
	if err := rc.ConfigSet(ctx, "repl-diskless-sync-delay", "0").Err(); err != nil {
		t.Fatal(err)
	}
	promotedAt, err := rc.Get(ctx, key).Int64()
	if err != nil {
		info, _ := rc.Info(ctx, "replication").Result()
		t.Fatalf("GET on the promoted replica: %v\n%s", err, info)
	}
	time.Sleep(time.Second)
	lostUpTo, err := master.Client(t).Get(ctx, key).Int64()
	if err != nil {
		t.Fatal(err)
	}
	master.Kill()
	sb.switchTo(replica.Addr)
	t.Logf("promoted replica holds %d; the old master had granted up to %d", promotedAt, lostUpTo)

	// An allocator started after the failover knows nothing to compare
	// with; it takes enough IDs to cover what the old master granted.
	late := newAllocator(t, rdb, key, opts)
	as = append(as, late)
	wg.Add(1)
	go take(late, int(lostUpTo-promotedAt)+2000, false)
	time.Sleep(time.Second)

	// The old master comes back empty, as a replica of the new one.
	master.Restart()
	if err := master.Client(t).SlaveOf(ctx, "127.0.0.1", strconv.Itoa(replica.Port)).Err(); err != nil {
		t.Fatal(err)
	}
	waitOnline(t, rc)
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	seen := make(map[int64]bool)
	var total, dups int
	for _, ids := range all {
		for i, id := range ids {
			if i > 0 && id <= ids[i-1] {
				t.Errorf("ID %d after %d in one goroutine; want increasing", id, ids[i-1])
			}
			if seen[id] {
				dups++
			}
			seen[id] = true
		}
		total += len(ids)
	}
	var st Stats
	for _, a := range as {
		s := a.Stats()
		st.Blocks += s.Blocks
		st.Unreplicated += s.Unreplicated
		st.FetchErrors += s.FetchErrors
		st.Regressions += s.Regressions
	}
	t.Logf("%d IDs, %d duplicates; blocks %d, unreplicated %d, fetch errors %d, regressions %d; Next errors: %d not replicated, %d other (last %v)",
		total, dups, st.Blocks, st.Unreplicated, st.FetchErrors, st.Regressions, notRepl.Load(), otherErr.Load(), lastErr.Load())
	if wantDups {
		if dups == 0 {
			t.Errorf("control run without WAIT issued no duplicate; the scenario does not lose writes")
		}
		return
	}
	if dups != 0 {
		t.Errorf("%d duplicate IDs among %d; want none", dups, total)
	}
	if st.Unreplicated == 0 || st.Regressions != 0 {
		t.Errorf("unreplicated blocks %d, regressions %d; want blocks discarded, no regression", st.Unreplicated, st.Regressions)
	}
}
