package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestCloseWritesMoreBatchesThanOneRoundHolds: Close with more keys than
// one flush round may have in doubt returns nil only with all of them in
// Redis.
func TestCloseWritesMoreBatchesThanOneRoundHolds(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	e, err := engine.New(rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour, BatchKeys: 8})
	if err != nil {
		t.Fatal(err)
	}
	const keys = 20_000 // 2,500 batches: over the 1,024 a round may hold
	for i := range keys {
		e.Add(fmt.Sprint("k", i), 1)
	}
	closeOrFail(t, e)
	n := 0
	for i := range keys {
		if v, _ := rdb.Get(context.Background(), ns+fmt.Sprint("k", i)).Int64(); v == 1 {
			n++
		}
	}
	if n != keys {
		t.Fatalf("Close returned nil with %d of %d keys in Redis", n, keys)
	}
}

// silentRedis accepts connections and never answers.
func silentRedis(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestCloseHonoursItsContext: against a Redis that never answers, with a
// client read timeout of a minute, Close returns soon after its context
// ends, naming what it could not write.
func TestCloseHonoursItsContext(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: silentRedis(t), ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	t.Cleanup(func() { rdb.Close() })
	e, err := engine.New(rdb, engine.Options{FlushInterval: 10 * time.Millisecond, FlushTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := e.Counter("a")
	c.Add(5)
	e.Add("b", 7)
	time.Sleep(50 * time.Millisecond) // a background flush gets stuck reading its reply
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Close(ctx) }()
	var err2 error
	select {
	case err2 = <-done:
	case <-time.After(30 * time.Second): // the client would wait 60 s and more
		t.Fatal("Close still running 30 s after its 300 ms context ended")
	}
	var u *engine.UnflushedError
	if !errors.As(err2, &u) || u.Delta != 12 || u.Keys != 2 || !errors.Is(err2, context.DeadlineExceeded) {
		t.Fatalf("Close = %v; want an *UnflushedError for delta 12 in 2 keys wrapping DeadlineExceeded", err2)
	}
}

// TestEveryAddIsFlushedRejectedOrReported hammers counters while Close
// runs: each Add ends in Redis, in RejectedAdds or in Close's error.
func TestEveryAddIsFlushedRejectedOrReported(t *testing.T) {
	rdb := redistest.Client(t)
	for round := range 5 {
		ns := redistest.Prefix(t)
		e, err := engine.New(rdb, engine.Options{Namespace: ns, FlushInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := e.Counter("hits")
		var attempts atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					attempts.Add(1)
					if g%2 == 0 {
						c.Inc()
					} else {
						e.Add("hits", 1)
					}
					if i%64 == 0 {
						runtime.Gosched()
					}
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cerr := e.Close(ctx)
		cancel()
		close(stop)
		wg.Wait()
		var reported int64
		var u *engine.UnflushedError
		if errors.As(cerr, &u) {
			reported = u.Delta
		} else if cerr != nil {
			t.Fatalf("round %d: Close = %v", round, cerr)
		}
		inRedis, _ := rdb.Get(context.Background(), ns+"hits").Int64()
		rejected := int64(e.Stats().RejectedAdds)
		if inRedis > attempts.Load() || inRedis+rejected+reported < attempts.Load() {
			t.Fatalf("round %d: %d Adds; %d in Redis, %d rejected, %d reported: %d vanished",
				round, attempts.Load(), inRedis, rejected, reported, attempts.Load()-inRedis-rejected-reported)
		}
	}
}

// TestReadsDoNotCreateCounters: Value of names never added leaves no
// counter in memory.
func TestReadsDoNotCreateCounters(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	e := newEngine(t, rdb, engine.Options{Namespace: ns})
	rdb.Set(ctx, ns+"seen-elsewhere", 9, 0)
	for i := range 5000 {
		if _, err := e.Value(ctx, fmt.Sprint("never", i)); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := e.Value(ctx, "seen-elsewhere"); err != nil || v != 9 {
		t.Fatalf("Value(seen-elsewhere) = %d, %v; want 9", v, err)
	}
	if n := e.Stats().Counters; n != 0 {
		t.Fatalf("%d counters in memory after 5,001 reads and no Add", n)
	}
	e.Add("mine", 3)
	if v, _ := e.Value(ctx, "mine"); v != 3 {
		t.Fatalf("Value(mine) = %d after Add 3; want 3 (read your writes)", v)
	}
}

// TestIdleCountersLeaveMemory: counters used by name leave memory once
// idle; handles stay; Forget removes a name at once; nothing is lost.
func TestIdleCountersLeaveMemory(t *testing.T) {
	inBubble(t, func(t *testing.T, rdb *redis.Client) {
		ns := redistest.Prefix(t)
		ctx := context.Background()
		e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour, IdleEvict: time.Minute})
		kept, _ := e.Counter("handle")
		kept.Add(1)
		for day := range 30 {
			for user := range 2000 {
				e.Add(fmt.Sprintf("day%d:user%d", day, user), 1)
			}
			if err := e.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Minute)
		}
		st := e.Stats()
		if st.Counters > 3*2000+1 {
			t.Fatalf("%d counters in memory after 30 rotations of 2,000 names; want at most 3 rotations' worth", st.Counters)
		}
		if st.Evicted < 25*2000 {
			t.Fatalf("Evicted = %d; want most of the 60,000 names", st.Evicted)
		}
		if got, _ := rdb.Get(ctx, ns+"day0:user7").Int64(); got != 1 {
			t.Fatalf("day0:user7 = %d in Redis; want 1", got)
		}
		if v, _ := kept.Value(ctx); v != 1 {
			t.Fatalf("handle value = %d; want 1", v)
		}
		e.Add("day29:user1", 5)
		if !e.Forget("day29:user1") {
			t.Fatal("Forget of a counter in memory returned false")
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := rdb.Get(ctx, ns+"day29:user1").Int64(); got != 6 {
			t.Fatalf("day29:user1 = %d; want 6: Forget must not drop the unflushed delta", got)
		}
		t.Logf("60,000 rotating names: %d counters in memory at the end, %d evicted", st.Counters, st.Evicted)
	})
}

// TestDiscardDropsARefusedDelta: a key Redis keeps refusing can be given
// up, and then Flush succeeds.
func TestDiscardDropsARefusedDelta(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	rdb.Set(ctx, ns+"bad", "text", 0)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	e.Add("bad", 4)
	e.Add("good", 1)
	if err := e.Flush(ctx); !errors.Is(err, flush.ErrNotInteger) {
		t.Fatalf("Flush = %v; want ErrNotInteger", err)
	}
	if n, err := e.Discard("bad"); err != nil || n != 4 {
		t.Fatalf("Discard(bad) = %d, %v; want 4", n, err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("Flush after Discard = %v", err)
	}
	if st := e.Stats(); st.DiscardedDelta != 4 {
		t.Fatalf("DiscardedDelta = %d; want 4", st.DiscardedDelta)
	}
}

// TestEvictionPolicyIsReported: a server that can evict abacus' state is
// reported through OnError at start.
func TestEvictionPolicyIsReported(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"}})
	rdb := srv.Client(t)
	got := make(chan error, 10)
	newEngine(t, rdb, engine.Options{OnError: func(err error) {
		select {
		case got <- err:
		default:
		}
	}})
	select {
	case err := <-got:
		var ee *flush.EvictionError
		if !errors.Is(err, flush.ErrEvictable) || !errors.As(err, &ee) || ee.Policy != "allkeys-lru" {
			t.Fatalf("OnError got %v; want an *EvictionError for allkeys-lru", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no eviction warning within a minute")
	}
}

// TestEvictionOfTokensIsReported: under a volatile-* policy an engine
// without TTLs is not at risk, until it writes token keys, which carry
// one: then the upkeep reports it.
func TestEvictionOfTokensIsReported(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "volatile-lru"}})
	rdb := srv.Client(t)
	ctx := context.Background()
	ns := redistest.Prefix(t)
	var mu sync.Mutex
	var reported []error
	e := newEngine(t, rdb, engine.Options{Namespace: ns, RecordTTL: 4 * time.Second, OnError: func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}})
	evictable := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, err := range reported {
			var ee *flush.EvictionError
			if errors.As(err, &ee) && ee.Policy == "volatile-lru" && !ee.Records {
				return true
			}
		}
		return false
	}
	// A collected record proves an upkeep round ran: its eviction check
	// comes first.
	stale := ns + "writer:gone-long-ago"
	rdb.HSet(ctx, stale, "seq", 7, "t", 1)
	redistest.WaitFor(t, "an upkeep round", func() bool { return rdb.Exists(ctx, stale).Val() == 0 })
	if evictable() {
		t.Fatal("an engine writing no key with a TTL was reported at risk under volatile-lru")
	}
	if err := e.AddOnce("k", 1, "request-1"); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, "the risk to token keys reported", evictable)
}

// TestStaleWriterRecordsAreCollected: a record left by a writer gone for
// RecordTTL is deleted by a running engine; its own record is not.
func TestStaleWriterRecordsAreCollected(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	stale := ns + "writer:gone-long-ago"
	rdb.HSet(ctx, stale, "seq", 7, "t", 1)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, RecordTTL: 4 * time.Second})
	e.Add("k", 1)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, "the stale record collected", func() bool { return rdb.Exists(ctx, stale).Val() == 0 })
	if n := rdb.Exists(ctx, ns+"writer:"+e.WriterID()).Val(); n != 1 {
		t.Fatal("the live writer's record was collected")
	}
}

func TestRingIsRejected(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	var ie *engine.InvalidError
	if _, err := engine.New(ring, engine.Options{}); !errors.Is(err, engine.ErrInvalid) || !errors.As(err, &ie) || ie.Field != "client" {
		t.Fatalf("New(Ring) = %v; want an *InvalidError for the client", err)
	}
}

// inBubble runs f in a testing/synctest bubble, where time is fake and
// moves only when every goroutine of the bubble is blocked, with a client
// of its own on the test Redis: for tests of ages and idle times that must
// not wait for them. Network I/O is real; Redis' clock is not faked.
func inBubble(t *testing.T, f func(t *testing.T, rdb *redis.Client)) {
	addr := redistest.Client(t).Options().Addr
	synctest.Test(t, func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		f(t, rdb)
	})
}
