package lease

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/redistest"
)

// noSyncDelay makes a replica sync at once instead of after 5 s.
var noSyncDelay = []string{"--repl-diskless-sync-delay", "0"}

// pair is a master and its replica, the replica replicating through a
// fault proxy so that a test can silence the link.
type pair struct {
	master, replica *redistest.Server
	link            *faultproxy.Proxy // the replica's connection to the master
	m, r            *redis.Client
}

func startPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{master: redistest.Start(t, redistest.Options{Args: noSyncDelay})}
	p.link = faultproxy.New(t, p.master.Addr)
	_, port, _ := strings.Cut(p.link.Addr(), ":")
	p.replica = redistest.Start(t, redistest.Options{Args: append([]string{"--replicaof", "127.0.0.1", port}, noSyncDelay...)})
	p.m, p.r = p.master.Client(t), p.replica.Client(t)
	waitReplicates(t, p.m, p.r)
	return p
}

// waitReplicates waits until the node of replica is a replica of the node
// of master with its link up and caught up with it.
func waitReplicates(t *testing.T, master, replica *redis.Client) {
	t.Helper()
	ctx := context.Background()
	until(t, replica.Options().Addr+" to replicate "+master.Options().Addr, func() bool {
		info, err := replica.Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(info, "master_link_status:up") {
			return false
		}
		// A write on this connection, then WAIT for it.
		if err := master.Set(ctx, "sync-probe", "x", time.Minute).Err(); err != nil {
			return false
		}
		n, err := master.Do(ctx, "WAIT", 1, 100).Int64()
		return err == nil && n >= 1
	})
}

// commands is a go-redis hook counting commands by name, in pipelines too.
type commands struct {
	mu sync.Mutex
	n  map[string]int // guarded by mu
}

func (c *commands) count(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[string]int)
	}
	for _, cmd := range cmds {
		c.n[cmd.Name()]++
	}
}

func (c *commands) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

func (c *commands) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *commands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.count(cmds...)
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*commands)(nil)

// TestDefaultWaitsOnlyWithReplica: with default Options an acquisition and
// a refresh are followed by WAIT when the master has a replica, and then
// the replica has the lease and its fence; on a single Redis nothing
// waits and an acquisition stays one round trip.
func TestDefaultWaitsOnlyWithReplica(t *testing.T) {
	ctx := context.Background()
	single := redistest.Start(t, redistest.Options{})
	p := startPair(t)
	tests := []struct {
		name       string
		master     *redistest.Server
		replica    *redis.Client // nil: none
		waits      int           // WAITs per acquisition and per refresh
		roundTrips int64         // of an acquisition, scripts cached
	}{
		{"single Redis", single, nil, 0, 1},
		// One round trip finds the replica (the script refuses to write
		// without WAIT), one acquires and waits.
		{"master with a replica", p.master, p.r, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds := &commands{}
			rdb := tt.master.Client(t)
			rdb.AddHook(cmds)
			o := Options{KeyPrefix: redistest.Prefix(t)}
			// Cache the scripts: round trips below count no NOSCRIPT.
			if l, err := TryAcquire(ctx, rdb, "warm", time.Minute, o); err != nil {
				t.Fatalf("TryAcquire = %v", err)
			} else if err := l.Refresh(ctx); err != nil {
				t.Fatalf("Refresh = %v", err)
			}
			before := cmds.get("wait")
			l := mustAcquire(t, rdb, "job", time.Minute, o)
			if got := cmds.get("wait") - before; got != tt.waits {
				t.Errorf("acquisition sent %d WAITs; want %d", got, tt.waits)
			}
			if st := l.Stats(); st.RoundTrips != tt.roundTrips {
				t.Errorf("acquisition took %d round trips; want %d", st.RoundTrips, tt.roundTrips)
			}
			if err := l.Refresh(ctx); err != nil {
				t.Fatalf("Refresh = %v", err)
			}
			if got := cmds.get("wait") - before; got != 2*tt.waits {
				t.Errorf("acquisition and refresh sent %d WAITs; want %d", got, 2*tt.waits)
			}
			if tt.replica != nil {
				// Acknowledged: the replica has applied both writes.
				_, fenceKey := Keys(o.KeyPrefix, "job")
				tok, err1 := tt.replica.Get(ctx, l.Key()).Result()
				fence, err2 := tt.replica.Get(ctx, fenceKey).Int64()
				if tok != l.Token() || fence != l.Fence() || err1 != nil || err2 != nil {
					t.Errorf("replica has token %q, fence %d (%v, %v); want %q, %d", tok, fence, err1, err2, l.Token(), l.Fence())
				}
			}
			if err := l.Release(ctx); err != nil {
				t.Fatalf("Release = %v", err)
			}
		})
	}
}

// TestRefreshWaitsOnceReplicaAppears: a lease acquired on a single Redis
// (no WAIT) starts waiting for the replica that later attaches, from the
// first refresh on.
func TestRefreshWaitsOnceReplicaAppears(t *testing.T) {
	ctx := context.Background()
	master := redistest.Start(t, redistest.Options{Args: noSyncDelay})
	cmds := &commands{}
	rdb := master.Client(t)
	rdb.AddHook(cmds)
	for _, s := range []*redis.Script{acquireScript, refreshScript} {
		if err := s.Load(ctx, rdb).Err(); err != nil { // round trips below count no NOSCRIPT
			t.Fatal(err)
		}
	}
	l := mustAcquire(t, rdb, "job", time.Minute, Options{KeyPrefix: redistest.Prefix(t)})
	if n := cmds.get("wait"); n != 0 {
		t.Fatalf("acquisition without a replica sent %d WAITs; want 0", n)
	}
	replica := redistest.Start(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}})
	waitReplicates(t, master.Client(t), replica.Client(t))
	for i := 1; i <= 2; i++ {
		if err := l.Refresh(ctx); err != nil {
			t.Fatalf("Refresh %d = %v", i, err)
		}
		if n := cmds.get("wait"); n != i {
			t.Errorf("after refresh %d: %d WAITs; want %d", i, n, i)
		}
	}
	// Refresh 1 found the replica (one round trip) and waited (another).
	if st := l.Stats(); st.RoundTrips != 1+2+1 {
		t.Errorf("Stats = %+v; want 4 round trips", st)
	}
}

// TestNotAcknowledgedIsNotHeld silences the replica two ways (its link
// blackholed: connected but mute; stopped: gone, the master having had
// it). With default Options, TryAcquire then fails with ErrNotReplicated
// and leaves the key free, Acquire keeps trying until its context ends and
// says why, and a held lease's Refresh fails with ErrNotReplicated without
// moving its deadline.
func TestNotAcknowledgedIsNotHeld(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		silence func(*pair)
	}{
		{"replica link blackholed", func(p *pair) { p.link.Blackhole(true) }},
		{"replica stopped", func(p *pair) { p.replica.Stop() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startPair(t)
			o := Options{KeyPrefix: redistest.Prefix(t), ReplicaTimeout: time.Second}
			held := mustAcquire(t, p.m, "held", time.Minute, o)
			tt.silence(p)

			_, err := TryAcquire(ctx, p.m, "job", time.Minute, o)
			wantErr(t, "TryAcquire", err, ErrNotReplicated)
			key, _ := Keys(o.KeyPrefix, "job")
			if n, err := p.m.Exists(ctx, key).Result(); err != nil || n != 0 {
				t.Errorf("EXISTS %s after ErrNotReplicated = %d, %v; want 0", key, n, err)
			}

			actx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err = Acquire(actx, p.m, "job", time.Minute, o)
			wantErr(t, "Acquire", err, ErrNotReplicated)
			wantErr(t, "Acquire", err, context.DeadlineExceeded)
			if n, err := p.m.Exists(ctx, key).Result(); err != nil || n != 0 {
				t.Errorf("EXISTS %s after Acquire gave up = %d, %v; want 0", key, n, err)
			}

			deadline := held.Deadline()
			wantErr(t, "Refresh", held.Refresh(ctx), ErrNotReplicated)
			if !held.Deadline().Equal(deadline) || held.Err() != nil {
				t.Errorf("after an unacknowledged Refresh: deadline %v (was %v), Err %v; want it unmoved, nil",
					held.Deadline(), deadline, held.Err())
			}
		})
	}
}

// owners watches the leases of one name from outside, as a fenced store
// would: every lease obtained is passed to obtained at once. It counts two
// violations, both possible only if Redis handed the name out twice:
//   - overlap: a lease obtained while another one's context is still live
//     (two processes believing they own the name);
//   - fence not above: a live lease whose fence is not above every fence
//     handed out before it.
//
// A fenced store (write) keeps the highest fence written and rejects lower
// ones; a rejection of a live lease is a legitimate owner refused.
type owners struct {
	mu       sync.Mutex
	leases   []*Lease // guarded by mu
	maxFence int64    // guarded by mu
	overlaps int      // guarded by mu
	notAbove int      // guarded by mu

	highest      int64 // guarded by mu; the store's highest fence written
	writes       int   // guarded by mu
	rejectedLive int   // guarded by mu; legitimate owners refused
}

func (o *owners) obtained(t testing.TB, l *Lease) {
	o.mu.Lock()
	defer o.mu.Unlock()
	// A lease that already ended cannot be placed in time: its fence still
	// bounds every later live one.
	if l.Err() == nil {
		for _, other := range o.leases {
			if other.Err() == nil {
				o.overlaps++
				t.Errorf("fence %d obtained while fence %d still held", l.Fence(), other.Fence())
			}
		}
		if len(o.leases) > 0 && l.Fence() <= o.maxFence {
			o.notAbove++
			t.Errorf("fence %d obtained after fence %d was handed out", l.Fence(), o.maxFence)
		}
	}
	o.leases = append(o.leases, l)
	o.maxFence = max(o.maxFence, l.Fence())
}

// write is a write to the fenced store by the holder of l.
func (o *owners) write(t testing.TB, l *Lease) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if l.Fence() < o.highest {
		if l.Err() == nil {
			o.rejectedLive++
			t.Errorf("store refused the live owner's fence %d below %d", l.Fence(), o.highest)
		}
		return
	}
	o.highest = l.Fence()
	o.writes++
}

func (o *owners) violations() (overlaps, notAbove, rejectedLive int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.overlaps, o.notAbove, o.rejectedLive
}

// recorder lets a control run expect errors without failing the test.
type recorder struct {
	testing.TB
	errs atomic.Int64
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs.Add(1)
	r.Logf("(expected in this control) "+format, args...)
}

// TestLossyFailover fails a master over to its replica the way Sentinel
// does (REPLICAOF NO ONE on the replica, then the old master made its
// replica), with the replica cut off first so that what the old master
// accepts in between is lost, while:
//   - the holder of "held" refreshes its lease on the old master;
//   - the holder of "moved" releases it there and another acquires it.
//
// Then contenders acquire both names on the new master. With default
// Options neither old owner can still believe it holds its lease when a
// contender gets it (the refresh on the old master fails, so its holder's
// deadline stays under the key's expiry on the new master; the other
// acquisition fails), and every fence is above all fences handed out. The
// control with Replicas -1 (never wait) shows that the checks fail without
// WAIT: both names get two owners and "moved" repeats a fence.
func TestLossyFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out TTLs of seconds")
	}
	tests := []struct {
		name     string
		replicas int
		safe     bool
	}{
		{"default", 0, true},
		{"control: never wait", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tb testing.TB = t
			rec := &recorder{TB: t}
			if !tt.safe {
				tb = rec
			}
			ctx := context.Background()
			p := startPair(t)
			const ttl = 3 * time.Second
			o := Options{
				KeyPrefix: redistest.Prefix(t),
				Replicas:  tt.replicas,
				// Wide, so that a late timer on a loaded machine is not
				// mistaken for an overlap.
				SafetyMargin:   500 * time.Millisecond,
				MaxRetryDelay:  5 * time.Millisecond,
				ReplicaTimeout: 300 * time.Millisecond,
			}
			var held, moved owners
			for range 3 { // fences to stay above
				l := mustAcquire(t, p.m, "moved", ttl, o)
				moved.obtained(tb, l)
				l.Release(ctx)
			}
			a := mustAcquire(t, p.m, "held", ttl, o)
			held.obtained(tb, a)
			c := mustAcquire(t, p.m, "moved", ttl, o)
			moved.obtained(tb, c)
			// Without WAIT in the control, let replication catch up: what
			// is lost below is only what came after the cut.
			p.m.Do(ctx, "WAIT", 1, 5000)

			p.link.Blackhole(true)
			// Late enough that an extension from now outlasts, by more
			// than the margin, the expiry the new master has.
			time.Sleep(ttl / 2)
			err := a.Refresh(ctx)
			if tt.safe {
				wantErr(t, "Refresh on the cut-off master", err, ErrNotReplicated)
			} else if err != nil {
				t.Fatalf("Refresh without WAIT = %v", err)
			}
			if err := c.Release(ctx); err != nil {
				t.Fatalf("Release = %v", err)
			}
			c2, err := TryAcquire(ctx, p.m, "moved", ttl, o)
			if tt.safe {
				wantErr(t, "TryAcquire on the cut-off master", err, ErrNotReplicated)
			} else if err != nil {
				t.Fatalf("TryAcquire without WAIT = %v", err)
			} else {
				moved.obtained(tb, c2)
			}

			// The failover: promote the replica, demote the old master.
			if err := p.r.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
				t.Fatalf("REPLICAOF NO ONE: %v", err)
			}
			if err := p.m.Do(ctx, "REPLICAOF", "127.0.0.1", strconv.Itoa(p.replica.Port)).Err(); err != nil {
				t.Fatalf("REPLICAOF on the old master: %v", err)
			}
			waitReplicates(t, p.r, p.m)

			actx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			for _, name := range []string{"held", "moved"} {
				w := &held
				if name == "moved" {
					w = &moved
				}
				b, err := Acquire(actx, p.r, name, ttl, o)
				if err != nil {
					t.Fatalf("Acquire(%q) on the new master = %v", name, err)
				}
				w.obtained(tb, b)
				b.Release(ctx)
			}

			ho, hn, _ := held.violations()
			mo, mn, _ := moved.violations()
			t.Logf("held: %d overlaps, %d fences not above; moved: %d overlaps, %d fences not above", ho, hn, mo, mn)
			if !tt.safe && (ho == 0 || mo == 0 || mn == 0) {
				t.Errorf("without WAIT: overlaps %d and %d, fences not above %d; want all > 0 (the checks must be able to fail)", ho, mo, mn)
			}
		})
	}
}
