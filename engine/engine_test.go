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
	"github.com/abacus-go/abacus/internal/redistest"
)

func newEngine(t testing.TB, rdb redis.UniversalClient, opts engine.Options) *engine.Engine {
	t.Helper()
	e, err := engine.New(rdb, opts)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close(ctx)
	})
	return e
}

func closeOrFail(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// hammer runs engines×goroutines writers adding random deltas in
// [-50, 100] to random keys until stop is closed (or each has done maxAdds),
// and returns the exact sum added per key. progress counts Adds.
func hammer(engines []*engine.Engine, goroutines, keys, maxAdds int, stop <-chan struct{}, progress *atomic.Int64) map[string]int64 {
	return hammerDeltas(engines, goroutines, keys, maxAdds, -50, stop, progress)
}

// hammerDeltas is hammer with deltas in [minDelta, 100].
func hammerDeltas(engines []*engine.Engine, goroutines, keys, maxAdds int, minDelta int64, stop <-chan struct{}, progress *atomic.Int64) map[string]int64 {
	var mu sync.Mutex
	want := map[string]int64{}
	var wg sync.WaitGroup
	for ei, e := range engines {
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(ei), uint64(g)))
				local := make(map[string]int64)
				handles := make(map[int]*engine.Counter)
				for i := 0; i < maxAdds; i++ {
					if i%256 == 0 {
						// Yield now and then, as request handlers do when
						// they block on I/O: 32 goroutines spinning on 2
						// cores would otherwise leave the flusher waiting
						// a full round of 10ms time slices at every step.
						runtime.Gosched()
						select {
						case <-stop:
							i = maxAdds
							continue
						default:
						}
					}
					k := r.IntN(keys)
					d := minDelta + r.Int64N(101-minDelta)
					name := fmt.Sprint("k", k)
					if i%2 == 0 { // half through handles, half through names
						c := handles[k]
						if c == nil {
							var err error
							if c, err = e.Counter(name); err != nil {
								if errors.Is(err, engine.ErrClosed) {
									return // the test failed and cleaned up
								}
								panic(err)
							}
							handles[k] = c
						}
						c.Add(d)
					} else if err := e.Add(name, d); err != nil {
						if errors.Is(err, engine.ErrClosed) {
							return // the test failed and cleaned up
						}
						panic(err)
					}
					local[name] += d
					if progress != nil {
						progress.Add(1)
					}
				}
				mu.Lock()
				for k, v := range local {
					want[k] += v
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return want
}

func checkTotals(t *testing.T, rdb redis.UniversalClient, ns string, want map[string]int64) {
	t.Helper()
	ctx := context.Background()
	bad := 0
	for name, w := range want {
		got, err := rdb.Get(ctx, ns+name).Int64()
		if errors.Is(err, redis.Nil) {
			got, err = 0, nil
		}
		if err != nil || got != w {
			if bad++; bad <= 10 {
				t.Errorf("GET %s = %d, %v; want %d", name, got, err, w)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d keys wrong", bad, len(want))
	}
}

// TestExactTotalsAcrossEngines: 4 engines, each with its own client, 8
// goroutines each, random positive and negative deltas over 10,000 keys;
// after Close every key holds exactly what was added.
func TestExactTotalsAcrossEngines(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	var engines []*engine.Engine
	for range 4 {
		c := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
		t.Cleanup(func() { c.Close() })
		engines = append(engines, newEngine(t, c, engine.Options{Namespace: ns, FlushInterval: 20 * time.Millisecond}))
	}
	adds := 25000
	if testing.Short() {
		adds = 2000
	}
	want := hammer(engines, 8, 10000, adds, nil, nil)
	for _, e := range engines {
		closeOrFail(t, e)
	}
	checkTotals(t, rdb, ns, want)
	var flushes uint64
	for _, e := range engines {
		flushes += e.Stats().Flushes
	}
	t.Logf("%d keys exact after %d flushes by 4 engines", len(want), flushes)
}

// TestOutageAddsKeepWorkingAndTotalsStayExact stops Redis for 2 s while
// writers run, restarts it with its data, and checks the totals.
func TestOutageAddsKeepWorkingAndTotalsStayExact(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})

	stop := make(chan struct{})
	var progress atomic.Int64
	result := make(chan map[string]int64)
	go func() { result <- hammer([]*engine.Engine{e}, 4, 1000, 1<<40, stop, &progress) }()

	redistest.WaitFor(t, "flushes before the outage", func() bool { return e.Stats().KeysFlushed > 0 })
	srv.Stop()
	during := progress.Load()
	time.Sleep(2 * time.Second)
	addsDuringOutage := progress.Load() - during
	failedDuring := e.Stats().FailedFlushes
	srv.Restart()
	redistest.WaitFor(t, "flushes after the outage", func() bool { return e.Stats().LastError == nil || e.Stats().PendingBatches == 0 })
	close(stop)
	want := <-result
	closeOrFail(t, e)

	if addsDuringOutage == 0 {
		t.Fatal("no Add completed while Redis was down: Add blocked")
	}
	if failedDuring == 0 {
		t.Fatal("no flush failed while Redis was down: the outage did not happen")
	}
	t.Logf("%d Adds during the 2 s outage; %d failed flushes; totals of %d keys checked", addsDuringOutage, failedDuring, len(want))
	checkTotals(t, rdb, ns, want)
}

// TestNonIntegerKeyIsReportedAndOthersFlush puts a string in one counter's
// key: that key yields a typed error, the rest of its batch is exact.
func TestNonIntegerKeyIsReportedAndOthersFlush(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	rdb.Set(ctx, ns+"poisoned", "not a number", 0)
	var mu sync.Mutex
	var reported []error
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour, OnError: func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}})
	for i := range 100 {
		e.Add(fmt.Sprint("ok", i), int64(i))
	}
	e.Add("poisoned", 7)
	err := e.Flush(ctx)
	var ke *flush.KeyError
	if !errors.As(err, &ke) || ke.Key != ns+"poisoned" || ke.Delta != 7 || !errors.Is(err, flush.ErrNotInteger) {
		t.Fatalf("Flush = %v; want a *flush.KeyError for %spoisoned, delta 7, wrapping ErrNotInteger", err, ns)
	}
	mu.Lock()
	if len(reported) != 1 || !errors.Is(reported[0], flush.ErrNotInteger) {
		t.Errorf("OnError got %v; want the one KeyError", reported)
	}
	mu.Unlock()
	for i := range 100 {
		if got, _ := rdb.Get(ctx, fmt.Sprint(ns, "ok", i)).Int64(); got != int64(i) {
			t.Fatalf("GET ok%d = %d; want %d", i, got, i)
		}
	}
	if st := e.Stats(); st.KeyErrors != 1 {
		t.Errorf("Stats().KeyErrors = %d; want 1", st.KeyErrors)
	}
	// The delta is kept: once the key is fixed, it arrives.
	rdb.Set(ctx, ns+"poisoned", "100", 0)
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("Flush after fixing the key: %v", err)
	}
	if got, _ := rdb.Get(ctx, ns+"poisoned").Int64(); got != 107 {
		t.Fatalf("GET poisoned = %d; want 107 (the kept delta 7 + 100)", got)
	}
}

func TestBadInput(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	for _, tc := range []struct {
		field string
		opts  engine.Options
	}{
		{"Options.FlushInterval", engine.Options{FlushInterval: -time.Second}},
		{"Options.FlushTimeout", engine.Options{FlushTimeout: -1}},
		{"Options.BatchKeys", engine.Options{BatchKeys: -1}},
		{"Options.MaxPipelineKeys", engine.Options{MaxPipelineKeys: -10}},
		{"Options.KeyTTL", engine.Options{KeyTTL: -time.Minute}},
		{"Options.RecordTTL", engine.Options{RecordTTL: -time.Minute}},
		{"Options.MaxStripes", engine.Options{MaxStripes: -1}},
		{"Options.MaxBackoff", engine.Options{MaxBackoff: -1}},
		{"Options.Delivery", engine.Options{Delivery: 7}},
		{"Options.Namespace", engine.Options{Namespace: strings.Repeat("n", engine.MaxNameLen+1)}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			_, err := engine.New(rdb, tc.opts)
			var ie *engine.InvalidError
			if !errors.Is(err, engine.ErrInvalid) || !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("New(%+v) = %v; want an *InvalidError for %s", tc.opts, err, tc.field)
			}
		})
	}
	if _, err := engine.New(nil, engine.Options{}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("New(nil client) = %v; want ErrInvalid", err)
	}

	e := newEngine(t, rdb, engine.Options{FlushInterval: time.Hour})
	for _, name := range []string{"", strings.Repeat("x", engine.MaxNameLen+1)} {
		if _, err := e.Counter(name); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("Counter(%d-byte name) = %v; want ErrInvalid", len(name), err)
		}
		if err := e.Add(name, 1); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("Add(%d-byte name) = %v; want ErrInvalid", len(name), err)
		}
		if _, err := e.Value(context.Background(), name); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("Value(%d-byte name) = %v; want ErrInvalid", len(name), err)
		}
	}
	if _, err := e.Counter(strings.Repeat("x", engine.MaxNameLen)); err != nil {
		t.Errorf("Counter(name of exactly MaxNameLen bytes) = %v; want ok", err)
	}
}

// TestDeltaReachesRedisWithoutFlush checks the background flusher: with
// FlushInterval 50ms an Add shows up in Redis without calling Flush.
func TestDeltaReachesRedisWithoutFlush(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: 50 * time.Millisecond})
	c, _ := e.Counter("pv")
	c.Add(42)
	redistest.WaitFor(t, "the delta in Redis", func() bool {
		n, _ := rdb.Get(context.Background(), ns+"pv").Int64()
		return n == 42
	})
	st := e.Stats()
	if st.MaxStaleness <= 0 {
		t.Errorf("Stats().MaxStaleness = %v; want the observed bound", st.MaxStaleness)
	}
	t.Logf("observed staleness bound %v, last flush %v", st.MaxStaleness, st.LastFlushDuration)
}

func TestCloseFlushesAndRejectsLaterAdds(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	c, _ := e.Counter("a")
	c.Add(3)
	closeOrFail(t, e)
	if got, _ := rdb.Get(context.Background(), ns+"a").Int64(); got != 3 {
		t.Fatalf("GET a after Close = %d; want 3", got)
	}
	c.Add(1)
	if err := e.Add("a", 1); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Add after Close = %v; want ErrClosed", err)
	}
	if _, err := e.Counter("b"); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Counter after Close = %v; want ErrClosed", err)
	}
	if err := e.Flush(context.Background()); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Flush after Close = %v; want ErrClosed", err)
	}
	if got := e.Stats().RejectedAdds; got != 2 {
		t.Errorf("RejectedAdds = %d; want 2", got)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v; want the first's nil", err)
	}
}

func TestCloseReportsWhatItCouldNotFlush(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	e := newEngine(t, rdb, engine.Options{FlushInterval: time.Hour})
	e.Add("x", 5)
	e.Add("y", -2)
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := e.Close(ctx)
	var u *engine.UnflushedError
	if !errors.As(err, &u) || u.Keys != 2 || u.Delta != 3 {
		t.Fatalf("Close with Redis down = %v; want *UnflushedError for 2 keys, delta 3", err)
	}
}

// TestValueReadsYourWrites: Value is Redis plus what this process has not
// flushed, before and after flushes, and other writers show up once the
// cache expires.
func TestValueReadsYourWrites(t *testing.T) {
	inBubble(t, testValueReadsYourWrites)
}

func testValueReadsYourWrites(t *testing.T, rdb *redis.Client) {
	ns := redistest.Prefix(t)
	ctx := context.Background()
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	rdb.Set(ctx, ns+"v", 100, 0)
	c, _ := e.Counter("v")
	c.Add(5)
	expect := func(want int64) {
		t.Helper()
		if got, err := c.Value(ctx); err != nil || got != want {
			t.Fatalf("Value() = %d, %v; want %d", got, err, want)
		}
	}
	expect(105)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	expect(105) // from the cache, kept current by the flush
	c.Add(1)
	expect(106)
	rdb.IncrBy(ctx, ns+"v", 1000) // another writer
	expect(106)                   // cached for MaxReadAge
	time.Sleep(2 * time.Second)   // in the bubble: at once
	expect(1106)
	st := e.Stats()
	if st.ReadRoundTrips != 2 || st.ReadCacheHits != 3 {
		t.Errorf("ReadRoundTrips = %d, ReadCacheHits = %d; want 2, 3", st.ReadRoundTrips, st.ReadCacheHits)
	}
}

func TestConcurrentValueSharesRoundTrips(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, MaxReadAge: -1, FlushInterval: time.Hour})
	c, _ := e.Counter("hot")
	c.Add(7)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if v, err := c.Value(context.Background()); err != nil || v != 7 {
					t.Errorf("Value() = %d, %v; want 7", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := e.Stats()
	if st.ReadRoundTrips >= st.Reads {
		t.Fatalf("%d reads took %d round trips; want them shared", st.Reads, st.ReadRoundTrips)
	}
	t.Logf("%d concurrent reads, %d GETs", st.Reads, st.ReadRoundTrips)
}

func TestValueOfNonIntegerKeyIsTyped(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	rdb.Set(ctx, ns+"s", "abc", 0)
	rdb.SAdd(ctx, ns+"set", "m")
	e := newEngine(t, rdb, engine.Options{Namespace: ns})
	if _, err := e.Value(ctx, "s"); !errors.Is(err, flush.ErrNotInteger) {
		t.Errorf("Value(string key) = %v; want ErrNotInteger", err)
	}
	if _, err := e.Value(ctx, "set"); !errors.Is(err, flush.ErrWrongType) {
		t.Errorf("Value(set key) = %v; want ErrWrongType", err)
	}
}

func TestKeyTTLExpiresIdleCounters(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	e := newEngine(t, rdb, engine.Options{Namespace: ns, KeyTTL: time.Minute})
	e.Add("t", 1)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rdb.PTTL(ctx, ns+"t").Result(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL = %v; want (0, 1m]", ttl)
	}
}

func TestAtLeastOnceDelivery(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, Delivery: flush.AtLeastOnce, FlushInterval: 10 * time.Millisecond})
	want := hammer([]*engine.Engine{e}, 4, 500, 5000, nil, nil)
	closeOrFail(t, e)
	checkTotals(t, rdb, ns, want)
}
