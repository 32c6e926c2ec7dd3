package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/redistest"
)

// addOnceOrFail calls e.AddOnce and fails t on an error.
func addOnceOrFail(t *testing.T, e *engine.Engine, name string, delta int64, token string) {
	t.Helper()
	if err := e.AddOnce(name, delta, token); err != nil {
		t.Fatalf("AddOnce(%q, %d, %q): %v", name, delta, token, err)
	}
}

func flushOrFail(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func getOrZero(t *testing.T, rdb redis.Cmdable, key string) int64 {
	t.Helper()
	n, err := rdb.Get(context.Background(), key).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("GET %s: %v", key, err)
	}
	return n
}

// onceEngines returns n engines on srv under namespace ns, each with a
// client of its own, as n processes would have; flushing only when told
// unless interval is set.
func onceEngines(t *testing.T, addrs []string, ns string, interval time.Duration) []*engine.Engine {
	t.Helper()
	if interval == 0 {
		interval = time.Hour
	}
	var engines []*engine.Engine
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1,
			ReadTimeout: slowdown * 500 * time.Millisecond})
		t.Cleanup(func() { c.Close() })
		// Replicas: -1 keeps the flusher from probing for replicas, so
		// that a fault meant for a flush is not spent on a probe.
		engines = append(engines, newEngine(t, c, engine.Options{Namespace: ns, FlushInterval: interval, Replicas: -1}))
	}
	return engines
}

// TestAddOnceFromFourEnginesCountsOnce: four engines (processes) each add
// the same token four times, flushing between rounds, next to tokens of
// their own, some of them retried: the shared token counts once, the
// others once each. The first engine's first flush writes the token, and
// its later adds of it are dropped in its process, which remembers the
// token (Dropped); the others' adds of it are refused in Redis every time
// (Seen): a process remembers only tokens it wrote, since the key of one
// that another process wrote may expire at any moment.
func TestAddOnceFromFourEnginesCountsOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ns := redistest.Prefix(t)
	engines := onceEngines(t, []string{srv.Addr, srv.Addr, srv.Addr, srv.Addr}, ns, 0)
	for round := range 4 {
		for i, e := range engines {
			addOnceOrFail(t, e, "billed", 1000, "request-shared")
			for k := range 10 {
				token := fmt.Sprintf("request-%d-%d", i, round*10+k)
				addOnceOrFail(t, e, "billed", 1, token)
				if k%3 == 0 {
					addOnceOrFail(t, e, "billed", 1, token) // a retry before the flush
				}
			}
			flushOrFail(t, e)
		}
	}
	want := int64(1000 + 4*4*10)
	if got := getOrZero(t, srv.Client(t), ns+"billed"); got != want {
		t.Fatalf("GET billed = %d; want %d (the shared token once, 160 of their own)", got, want)
	}
	var sum engine.OnceStats
	for i, e := range engines {
		v, err := e.Value(context.Background(), "billed")
		if err != nil || v != want {
			t.Errorf("engine %d: Value = %d, %v; want %d", i, v, err, want)
		}
		s := e.Stats().Once
		sum.Adds += s.Adds
		sum.Applied += s.Applied
		sum.Seen += s.Seen
		sum.Dropped += s.Dropped
		sum.Pending += s.Pending
	}
	// Per engine: 4 rounds × 10 own adds, 4 of them retried per round
	// (dropped); the shared token: the first engine's add of round 0
	// applied and its 3 later ones dropped, the 12 of the others seen.
	if sum.Adds != 160+1+12 || sum.Applied != 160+1 || sum.Seen != 12 || sum.Dropped != 64+3 || sum.Pending != 0 {
		t.Errorf("stats over the engines %+v; want Adds 173, Applied 161, Seen 12, Dropped 67, Pending 0", sum)
	}
}

// TestAddOnceSurvivesALostReply: as above, with the first flush of one
// engine applied in Redis while its reply is held past the client's read
// timeout (lost to it), retried by the caller while in doubt, then resent:
// the resend is recognised (the batch is not applied twice) and reports
// the token Redis held when it first applied the batch, and the totals
// stay exact.
func TestAddOnceSurvivesALostReply(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ns := redistest.Prefix(t)
	proxies := make([]*faultproxy.Proxy, 4)
	addrs := make([]string, 4)
	for i := range proxies {
		proxies[i] = faultproxy.New(t, srv.Addr)
		addrs[i] = proxies[i].Addr()
	}
	engines := onceEngines(t, addrs, ns, 0)
	ctx := context.Background()
	add := func(i int, round int) {
		addOnceOrFail(t, engines[i], "billed", 1000, "request-shared")
		for k := range 10 {
			addOnceOrFail(t, engines[i], "billed", 1, fmt.Sprintf("request-%d-%d", i, round*10+k))
		}
	}
	// Engine 0 writes the shared token first; engine 1's first flush,
	// whose reply is lost, finds it there.
	add(0, 0)
	flushOrFail(t, engines[0])
	add(1, 0)
	direct := srv.Client(t)
	for applied := false; !applied; {
		// A connection in the pool, so that the flush does not open one:
		// a stalled HELLO is not what this test is about.
		if err := engines[1].Client().Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		proxies[1].StallReplies(slowdown * 2 * time.Second)
		fctx, cancel := context.WithTimeout(ctx, slowdown*5*time.Second)
		err := engines[1].Flush(fctx)
		cancel()
		proxies[1].StallReplies(0)
		if !errors.Is(err, flush.ErrPending) {
			t.Fatalf("Flush with its reply lost: %v; want flush.ErrPending", err)
		}
		// The batch reached Redis, unless the flush opened a connection
		// anyway: then it is sent again.
		applied = getOrZero(t, direct, ns+"billed") == 1000+10+10
	}
	add(1, 0) // the caller retries while the adds are in doubt: dropped
	for round := range 4 {
		for i, e := range engines {
			if round > 0 || i > 1 {
				add(i, round)
			}
			flushOrFail(t, e)
		}
	}
	want := int64(1000 + 4*4*10)
	if got := getOrZero(t, srv.Client(t), ns+"billed"); got != want {
		t.Fatalf("GET billed = %d; want %d", got, want)
	}
	st := engines[1].Stats()
	if st.Resent == 0 || st.Duplicates == 0 {
		t.Fatalf("engine 1: Resent %d, Duplicates %d; want its batch resent and found applied", st.Resent, st.Duplicates)
	}
	// The shared token: seen by the batch whose reply was lost (once, as
	// the resend reported it again) and by each later round; the retry
	// while in doubt dropped, with its 10 own tokens.
	if s := st.Once; s.Seen != 1+3 || s.Applied != 40 || s.Dropped != 11 || s.Pending != 0 {
		t.Errorf("engine 1: %+v; want the shared token Seen 4 times, 40 Applied, 11 Dropped", s)
	}
	for i, e := range engines {
		if v, err := e.Value(ctx, "billed"); err != nil || v != want {
			t.Errorf("engine %d: Value = %d, %v; want %d", i, v, err, want)
		}
	}
}

// TestAddOnceRetriedAfterItsBatchWasLost: a batch with a token add is in
// doubt (its request went nowhere: the link was a black hole) when Redis
// loses the engine's writer record, so the resend cannot tell whether it
// was applied and the flush gives it up (flush.ErrRecordLost). A retry of
// the add, the caller's only way to recover it, must go to Redis, which
// applies it since the batch never arrived; the process must not drop it
// as if it had written the token.
func TestAddOnceRetriedAfterItsBatchWasLost(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ns := redistest.Prefix(t)
	proxy := faultproxy.New(t, srv.Addr)
	e := onceEngines(t, []string{proxy.Addr()}, ns, 0)[0]
	ctx := context.Background()
	direct := srv.Client(t)
	tryFlush := func() error {
		t.Helper()
		fctx, cancel := context.WithTimeout(ctx, slowdown*5*time.Second)
		defer cancel()
		return e.Flush(fctx)
	}
	addOnceOrFail(t, e, "billed", 1, "request-0")
	flushOrFail(t, e) // batch 1: the record holds seq 1

	addOnceOrFail(t, e, "billed", 1000, "request-1")
	// A connection in the pool, so that the flush sends its batch on it
	// rather than wait for a dial.
	if err := e.Client().Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	proxy.Blackhole(true)
	err := tryFlush()
	proxy.Blackhole(false)
	if !errors.Is(err, flush.ErrPending) {
		t.Fatalf("Flush into a black hole: %v; want flush.ErrPending", err)
	}
	if err := direct.Del(ctx, ns+"writer:"+e.WriterID()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := tryFlush(); !errors.Is(err, flush.ErrRecordLost) {
		t.Fatalf("Flush after the record vanished: %v; want flush.ErrRecordLost", err)
	}
	if got := getOrZero(t, direct, ns+"billed"); got != 1 {
		t.Fatalf("GET billed = %d after the lost batch; want 1 (it never reached Redis)", got)
	}

	// The caller retries. The retry must not be dropped in this process,
	// and it counts once. Its batch, the first after the record vanished,
	// finds the record behind what the writer knows was applied: the
	// flush reports that regression, and applies the batch.
	addOnceOrFail(t, e, "billed", 1000, "request-1")
	if err := tryFlush(); err != nil && !errors.Is(err, flush.ErrRegressed) {
		t.Fatalf("Flush of the retry: %v; want nil or flush.ErrRegressed", err)
	}
	if got := getOrZero(t, direct, ns+"billed"); got != 1001 {
		t.Fatalf("GET billed = %d after the retry; want 1001: the retry of a lost add must reach Redis", got)
	}
	if v, err := e.Value(ctx, "billed"); err != nil || v != 1001 {
		t.Errorf("Value = %d, %v; want 1001", v, err)
	}
	s := e.Stats().Once
	if s.Adds != 3 || s.Applied != 2 || s.Lost != 1 || s.Dropped != 0 || s.Pending != 0 || s.Remembered != 2 {
		t.Errorf("Stats().Once = %+v; want Adds 3, Applied 2, Lost 1, Dropped 0, Pending 0, Remembered 2", s)
	}
}

// TestAddOnceHammeredWithLostReplies: 4 engines × 4 goroutines add random
// tokens of a common pool, each token with a delta of its own, while the
// engines' replies are dropped now and then; every engine flushes in the
// background. The total is exactly the sum of the deltas of the tokens
// used.
func TestAddOnceHammeredWithLostReplies(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ns := redistest.Prefix(t)
	proxy := faultproxy.New(t, srv.Addr)
	addrs := []string{proxy.Addr(), proxy.Addr(), proxy.Addr(), proxy.Addr()}
	engines := onceEngines(t, addrs, ns, 10*time.Millisecond)
	const tokens = 5000
	used := make([]bool, tokens)
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for ei, e := range engines {
		for g := range 4 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(ei), uint64(g)))
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					k := r.IntN(tokens)
					if err := e.AddOnce(fmt.Sprint("c", k%7), int64(k+1), fmt.Sprint("t", k)); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					used[k] = true
					mu.Unlock()
					if i%64 == 0 {
						time.Sleep(time.Millisecond) // request handlers wait on I/O
					}
				}
			})
		}
	}
	for range 20 {
		before := engines[0].Stats().Flushes
		proxy.DropNextReply()
		redistest.WaitFor(t, "flushes after a lost reply", func() bool { return engines[0].Stats().Flushes > before+3 })
	}
	close(stop)
	wg.Wait()
	for _, e := range engines {
		closeOrFail(t, e)
	}
	want := map[string]int64{}
	for k, u := range used {
		if u {
			want[fmt.Sprint("c", k%7)] += int64(k + 1)
		}
	}
	checkTotals(t, srv.Client(t), ns, want)
	var seen, dropped, resent, dups uint64
	for _, e := range engines {
		st := e.Stats()
		seen, dropped, resent, dups = seen+st.Once.Seen, dropped+st.Once.Dropped, resent+st.Resent, dups+st.Duplicates
	}
	t.Logf("%d replies dropped; %d batches resent, %d found applied; %d token adds refused in Redis, %d dropped in their process",
		proxy.Stats().DroppedReplies, resent, dups, seen, dropped)
	if resent == 0 {
		t.Error("no batch was resent: the lost replies missed the flushes")
	}
}

// TestAddOnceTokenExpires: a token's key expires TokenTTL after the flush
// that wrote it, and a retry after that counts again, in any process;
// that retry's flush writes the token again, for another TokenTTL. The
// TTL is long, so that no check depends on the machine's speed: its PTTL
// is checked against it, and the expiry is made by deleting the key.
func TestAddOnceTokenExpires(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	const ttl = 6 * time.Hour // not the default, which Redis must not show
	var engines []*engine.Engine
	for range 3 {
		engines = append(engines, newEngine(t, srv.Client(t), engine.Options{Namespace: ns, TokenTTL: ttl, FlushInterval: time.Hour}))
	}
	checkPTTL := func(token, when string) {
		t.Helper()
		if pttl, err := rdb.PTTL(ctx, token).Result(); err != nil || pttl < ttl/2 || pttl > ttl {
			t.Fatalf("PTTL %s = %v, %v %s; want within [%v, %v]", token, pttl, err, when, ttl/2, ttl)
		}
	}
	addOnceOrFail(t, engines[0], "billed", 7, "request-1")
	flushOrFail(t, engines[0])
	keys, err := rdb.Keys(ctx, "*"+ns+"once:*").Result()
	if err != nil || len(keys) != 1 || !strings.HasSuffix(keys[0], ":request-1") {
		t.Fatalf("token keys %v, %v; want one, for request-1", keys, err)
	}
	token := keys[0]
	checkPTTL(token, "after the first write")
	addOnceOrFail(t, engines[1], "billed", 7, "request-1")
	flushOrFail(t, engines[1])
	if got := getOrZero(t, rdb, ns+"billed"); got != 7 {
		t.Fatalf("GET billed = %d within the window; want 7", got)
	}
	if err := rdb.Del(ctx, token).Err(); err != nil { // the token expires
		t.Fatal(err)
	}
	// Engine 1 retries: Redis held the token when engine 1 sent it
	// before, so engine 1 does not remember it, and asks Redis again.
	addOnceOrFail(t, engines[1], "billed", 7, "request-1")
	flushOrFail(t, engines[1])
	if got := getOrZero(t, rdb, ns+"billed"); got != 14 {
		t.Fatalf("GET billed = %d after the window; want 14", got)
	}
	checkPTTL(token, "after the second write")
	// A process that never saw the token retries within the new window:
	// Redis refuses it.
	addOnceOrFail(t, engines[2], "billed", 7, "request-1")
	flushOrFail(t, engines[2])
	if got := getOrZero(t, rdb, ns+"billed"); got != 14 {
		t.Fatalf("GET billed = %d after a retry within the new window; want 14", got)
	}
	for i, want := range []engine.OnceStats{
		{Adds: 1, Applied: 1, Remembered: 1},
		{Adds: 2, Applied: 1, Seen: 1, Remembered: 1},
		{Adds: 1, Seen: 1},
	} {
		if got := engines[i].Stats().Once; got != want {
			t.Errorf("engine %d: Stats().Once = %+v; want %+v", i, got, want)
		}
	}
}

// TestAddOnceOnCluster: four engines add tokens to counters in different
// slots of one master of a 3-master Cluster, each token four times, from
// each engine: every counter counts each token once, and each token key
// lives in its counter's slot.
func TestAddOnceOnCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	check := cluster.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	first, last := cluster.Slots(1)
	var names []string
	slots := map[int]bool{}
	for i := 0; len(names) < 8; i++ {
		name := fmt.Sprint("billed:", i)
		if s := flush.Slot(ns + name); s >= first && s <= last && !slots[s] {
			names = append(names, name)
			slots[s] = true
		}
	}
	var engines []*engine.Engine
	for range 4 {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
		t.Cleanup(func() { c.Close() })
		engines = append(engines, newEngine(t, c, engine.Options{Namespace: ns, FlushInterval: 20 * time.Millisecond}))
	}
	var wg sync.WaitGroup
	for _, e := range engines {
		wg.Go(func() {
			for round := range 4 {
				for ni, name := range names {
					for k := range 25 {
						if err := e.AddOnce(name, int64(ni+1), fmt.Sprint("request-", k)); err != nil {
							t.Error(err)
							return
						}
					}
				}
				if err := e.Flush(ctx); err != nil && round == 3 {
					t.Errorf("Flush: %v", err)
				}
			}
		})
	}
	wg.Wait()
	for _, e := range engines {
		closeOrFail(t, e)
	}
	for ni, name := range names {
		if got := getOrZero(t, check, ns+name); got != int64(25*(ni+1)) {
			t.Errorf("GET %s = %d; want %d", name, got, 25*(ni+1))
		}
	}
	node := cluster.Nodes[1].Client(t)
	keys, err := node.Keys(ctx, "*"+ns+"once:*").Result()
	if err != nil || len(keys) != len(names)*25 {
		t.Fatalf("%d token keys on master 1, %v; want %d", len(keys), err, len(names)*25)
	}
	for _, k := range keys {
		name := k[strings.Index(k, "once:"):] // once:<len>:<name>:<token>
		for _, n := range names {
			if strings.HasPrefix(name, fmt.Sprintf("once:%d:%s:", len(n), n)) && flush.Slot(k) != flush.Slot(ns+n) {
				t.Errorf("token key %s in slot %d; its counter %s in %d", k, flush.Slot(k), n, flush.Slot(ns+n))
			}
		}
	}
	var applied, seen uint64
	for _, e := range engines {
		applied, seen = applied+e.Stats().Once.Applied, seen+e.Stats().Once.Seen
	}
	t.Logf("%d counters in %d slots of master 1: %d token adds applied, %d refused in Redis", len(names), len(slots), applied, seen)
}

// TestAddOnceReadsOwnWrites: Value counts this process's token adds
// before they are flushed, once per token, and the same after.
func TestAddOnceReadsOwnWrites(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	c, err := e.Counter("billed")
	if err != nil {
		t.Fatal(err)
	}
	value := func(want int64) {
		t.Helper()
		for _, read := range []func() (int64, error){
			func() (int64, error) { return c.Value(ctx) },
			func() (int64, error) { return e.Value(ctx, "billed") },
		} {
			if v, err := read(); err != nil || v != want {
				t.Fatalf("Value = %d, %v; want %d", v, err, want)
			}
		}
	}
	value(0)
	if err := c.AddOnce(5, "a"); err != nil {
		t.Fatal(err)
	}
	addOnceOrFail(t, e, "billed", 5, "a") // the same token by name: dropped
	c.Add(1)
	value(6)
	flushOrFail(t, e)
	value(6)
	addOnceOrFail(t, e, "billed", -2, "b")
	addOnceOrFail(t, e, "other", 100, "a") // the token's scope is the counter
	value(4)
	flushOrFail(t, e)
	value(4)
	if v, _ := e.Value(ctx, "other"); v != 100 {
		t.Fatalf("Value(other) = %d; want 100", v)
	}
	if s := e.Stats().Once; s.Adds != 3 || s.Dropped != 1 || s.Applied != 3 || s.Remembered != 3 {
		t.Fatalf("Stats().Once = %+v; want Adds 3, Dropped 1, Applied 3, Remembered 3", s)
	}
}

// TestAddOnceValueExactWhileABacklogDrains: a flush drains many pending
// token adds, of several counters and in every shard, letting go of the
// engine's lock every chunk of them, while readers read the counters and
// writers add more tokens: every read sees every add exactly once, and so
// does Redis in the end.
func TestAddOnceValueExactWhileABacklogDrains(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	const counters, backlog = 3, 20_000
	var added [counters]atomic.Int64
	for i := range backlog {
		addOnceOrFail(t, e, fmt.Sprint("c", i%counters), 1, fmt.Sprint("backlog-", i))
		added[i%counters].Add(1)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range counters {
		wg.Go(func() { // a reader: a value never below what was added before the read, never above what was added by its end
			name := fmt.Sprint("c", c)
			for {
				select {
				case <-stop:
					return
				default:
				}
				low := added[c].Load()
				v, err := e.Value(ctx, name)
				if high := added[c].Load(); err != nil || v < low || v > high {
					t.Errorf("Value(%s) = %d, %v; want within [%d, %d]", name, v, err, low, high)
					return
				}
			}
		})
		wg.Go(func() { // a writer
			name := fmt.Sprint("c", c)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := e.AddOnce(name, 1, fmt.Sprint("more-", i)); err != nil {
					t.Error(err)
					return
				}
				added[c].Add(1)
				runtime.Gosched()
			}
		})
	}
	flushOrFail(t, e)
	close(stop)
	wg.Wait()
	flushOrFail(t, e)
	for c := range counters {
		name := fmt.Sprint("c", c)
		if got, want := getOrZero(t, rdb, ns+name), added[c].Load(); got != want {
			t.Errorf("GET %s = %d; want %d", name, got, want)
		}
	}
}

// TestAddOnceCarriesCounterOptions: a token add of a counter with a TTL
// of its own sets it, as any delta of the counter does, even when the
// counter was forgotten before the flush.
func TestAddOnceCarriesCounterOptions(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	c, err := e.CounterWith("daily", engine.CounterOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddOnce(3, "a"); err != nil {
		t.Fatal(err)
	}
	e.Forget("daily")
	flushOrFail(t, e)
	if ttl, err := rdb.PTTL(context.Background(), ns+"daily").Result(); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Fatalf("PTTL daily = %v, %v; want within (0, 1h]", ttl, err)
	}
}

// TestAddOnceRejectsBadInput: bad names and tokens, a bad TokenTTL, an
// at-least-once engine and a closed one each get their typed error.
func TestAddOnceRejectsBadInput(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns})
	long := strings.Repeat("x", engine.MaxNameLen+1)
	for _, tc := range []struct {
		name, token string
		field       string
	}{
		{"", "t", "name"},
		{long, "t", "name"},
		{"c", "", "token"},
		{"c", long, "token"},
	} {
		var ie *engine.InvalidError
		err := e.AddOnce(tc.name, 1, tc.token)
		if !errors.As(err, &ie) || ie.Field != tc.field || !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("AddOnce(%.10q, 1, %.10q) = %v; want an *InvalidError for %s", tc.name, tc.token, err, tc.field)
		}
	}
	for _, ttl := range []time.Duration{-time.Second, time.Microsecond} {
		var ie *engine.InvalidError
		if _, err := engine.New(rdb, engine.Options{TokenTTL: ttl}); !errors.As(err, &ie) || ie.Field != "Options.TokenTTL" {
			t.Errorf("New with TokenTTL %v: %v; want an *InvalidError for Options.TokenTTL", ttl, err)
		}
	}
	plain := newEngine(t, rdb, engine.Options{Namespace: ns, Delivery: flush.AtLeastOnce})
	if err := plain.AddOnce("c", 1, "t"); !errors.Is(err, engine.ErrNotExactlyOnce) {
		t.Errorf("AddOnce on an at-least-once engine: %v; want ErrNotExactlyOnce", err)
	}
	closeOrFail(t, e)
	if err := e.AddOnce("c", 1, "t"); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("AddOnce after Close: %v; want ErrClosed", err)
	}
	if n := e.Stats().RejectedAdds; n != 1 {
		t.Errorf("RejectedAdds = %d; want 1", n)
	}
}

// TestCloseReportsUnflushedTokenAdds: with Redis unreachable, Close
// reports the token adds it could not write, one per token.
func TestCloseReportsUnflushedTokenAdds(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := faultproxy.New(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t), FlushInterval: time.Hour})
	proxy.Refuse(true)
	proxy.CutAll()
	for k := range 5 {
		addOnceOrFail(t, e, "billed", 10, fmt.Sprint("request-", k))
		addOnceOrFail(t, e, "billed", 10, fmt.Sprint("request-", k)) // retried: dropped
	}
	addOnceOrFail(t, e, "other", 1, "request-0")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := e.Close(ctx)
	var u *engine.UnflushedError
	if !errors.As(err, &u) {
		t.Fatalf("Close with Redis down: %v; want an *UnflushedError", err)
	}
	if u.Tokens != 6 || u.TokenDelta != 51 || u.Keys != 0 || len(u.TokenNames) != 2 {
		t.Fatalf("UnflushedError %+v; want 6 token adds of delta 51 to 2 counters, no counter delta", u)
	}
	if !strings.Contains(err.Error(), "6 token adds (delta 51") {
		t.Errorf("message %q does not name the token adds", err)
	}
}

// TestDiscardDropsTokenAdds: the token adds of a key Redis refuses are
// kept, and Discard gives them up.
func TestDiscardDropsTokenAdds(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	rdb.Set(ctx, ns+"text", "hello", 0)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	addOnceOrFail(t, e, "text", 3, "a")
	addOnceOrFail(t, e, "text", 4, "b")
	e.Add("text", 1)
	if err := e.Flush(ctx); !errors.Is(err, flush.ErrNotInteger) {
		t.Fatalf("Flush: %v; want flush.ErrNotInteger", err)
	}
	if s := e.Stats().Once; s.Pending != 2 {
		t.Fatalf("Stats().Once.Pending = %d after the refusal; want 2", s.Pending)
	}
	if n, err := e.Discard("text"); err != nil || n != 8 {
		t.Fatalf("Discard = %d, %v; want 8", n, err)
	}
	closeOrFail(t, e)
	if s := e.Stats().Once; s.Pending != 0 {
		t.Fatalf("Stats().Once.Pending = %d after Discard; want 0", s.Pending)
	}
}

// TestAddOnceBacklogIsBounded: past MaxPendingTokens token adds waiting
// for Redis, AddOnce turns adds away with ErrTokenBacklog, and takes them
// again once a flush has written the others.
func TestAddOnceBacklogIsBounded(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour, MaxPendingTokens: 3})
	for k := range 3 {
		addOnceOrFail(t, e, "billed", 1, fmt.Sprint("request-", k))
	}
	addOnceOrFail(t, e, "billed", 1, "request-0") // held already: dropped, not turned away
	if err := e.AddOnce("billed", 1, "request-3"); !errors.Is(err, engine.ErrTokenBacklog) {
		t.Fatalf("AddOnce past MaxPendingTokens: %v; want ErrTokenBacklog", err)
	}
	flushOrFail(t, e)
	addOnceOrFail(t, e, "billed", 1, "request-3")
	flushOrFail(t, e)
	if got := getOrZero(t, rdb, ns+"billed"); got != 4 {
		t.Fatalf("GET billed = %d; want 4", got)
	}
	if s := e.Stats().Once; s.Backlogged != 1 || s.Dropped != 1 || s.Applied != 4 {
		t.Fatalf("Stats().Once = %+v; want Backlogged 1, Dropped 1, Applied 4", s)
	}
}

// TestPendingTokenAddMemory measures the heap a token add takes while it
// waits for Redis, as documented (about 200 bytes, with a short name and
// token).
func TestPendingTokenAddMemory(t *testing.T) {
	rdb := redistest.Client(t)
	e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t), FlushInterval: time.Hour})
	const n = 100_000
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("request-%06d", i)
	}
	runtime.GC()
	before := heapAlloc()
	for _, token := range tokens {
		addOnceOrFail(t, e, "billed", 1, token)
	}
	runtime.GC()
	per := float64(heapAlloc()-before) / n
	t.Logf("%.0f bytes per pending token add (name %q, tokens of 14 bytes)", per, "billed")
	if per > 300 {
		t.Errorf("%.0f bytes per pending token add; the documentation says about 200", per)
	}
	runtime.KeepAlive(tokens)
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestTokenRedisMemory measures what a token costs Redis for its window:
// a key of its own with a TTL.
func TestTokenRedisMemory(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{}) // its own: INFO memory is per server
	rdb := srv.Client(t)
	e := newEngine(t, rdb, engine.Options{FlushInterval: time.Hour})
	used := func() int64 {
		info, err := rdb.Info(context.Background(), "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				var m int64
				fmt.Sscan(v, &m)
				return m
			}
		}
		t.Fatal("INFO memory without used_memory")
		return 0
	}
	addOnceOrFail(t, e, "calls:acme", 1, "warm-up") // the record, the counter
	flushOrFail(t, e)
	before := used()
	const n = 100_000
	for i := range n {
		addOnceOrFail(t, e, "calls:acme", 1, fmt.Sprintf("req-%016x", i))
	}
	flushOrFail(t, e)
	per := float64(used()-before) / n
	key := e.Key("calls:acme")
	t.Logf("%.0f bytes of Redis memory per token (keys like {tag}%sonce:%d:calls:acme:req-0123456789abcdef)", per, key[:len(key)-len("calls:acme")], len("calls:acme"))
	if per > 300 {
		t.Errorf("%.0f bytes of Redis memory per token; the documentation says about 150", per)
	}
}
