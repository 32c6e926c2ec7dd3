package engine_test

import (
	"bytes"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestLongOutageMemoryStaysBounded keeps 8 writers adding over
// outageKeys keys (100,000; fewer under -race) while Redis is unreachable
// for longOutage (60 s; 20 s under -race): pending deltas coalesce per
// key, so the heap must stop growing once every key exists, and the
// totals must be exact after Redis returns.
func TestLongOutageMemoryStaysBounded(t *testing.T) {
	outage := longOutage
	if testing.Short() {
		outage = 5 * time.Second
	}
	// Redis is taken away by a proxy that cuts every connection and
	// refuses new ones, not by stopping it: a stopped server frees its
	// port, which a test binary running in parallel can take meanwhile.
	srv := redistest.Start(t, redistest.Options{})
	proxy := faultproxy.New(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})

	stop := make(chan struct{})
	var adds atomic.Int64
	result := make(chan map[string]int64)
	go func() { result <- hammer([]*engine.Engine{e}, 8, outageKeys, 1<<40, stop, &adds) }()
	redistest.WaitFor(t, "all keys created", func() bool { return e.Stats().Counters == outageKeys })
	redistest.WaitFor(t, "a flush of them", func() bool { return e.Stats().KeysFlushed >= outageKeys })

	proxy.Refuse(true)
	proxy.CutAll()
	start := time.Now()
	addsBefore := adds.Load()
	var early, peak uint64
	for time.Since(start) < outage {
		time.Sleep(outage / 60)
		h := heapInUse()
		peak = max(peak, h)
		if early == 0 && time.Since(start) > outage/6 {
			early = h
		}
	}
	addsDuring := adds.Load() - addsBefore
	proxy.Refuse(false)
	close(stop)
	want := <-result
	closeOrFail(t, e)
	checkTotals(t, srv.Client(t), ns, want)

	t.Logf("%v outage, %d keys: %d Adds meanwhile; heap %.1f MiB after %v, peak %.1f MiB",
		outage, len(want), addsDuring, mib(early), outage/6, mib(peak))
	if addsDuring == 0 {
		t.Fatal("no Add completed during the outage")
	}
	// Deltas coalesce in the counters: after the first sixth of the
	// outage the heap may wobble with GC, but not grow with time.
	if peak > early+early/2+8<<20 {
		t.Fatalf("heap grew from %.1f MiB to %.1f MiB during the outage", mib(early), mib(peak))
	}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLoggerSeesTheOutage: an outage is logged once when flushes start
// failing and once when they recover, not once per failed flush.
func TestLoggerSeesTheOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := faultproxy.New(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	var logs syncBuffer
	e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t), FlushInterval: 10 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	e.Add("a", 1)
	redistest.WaitFor(t, "a flush", func() bool { return e.Stats().KeysFlushed == 1 })
	proxy.Refuse(true)
	proxy.CutAll()
	e.Add("a", 1)
	redistest.WaitFor(t, "three failed flushes", func() bool { return e.Stats().FailedFlushes >= 3 })
	proxy.Refuse(false)
	redistest.WaitFor(t, "the flush after the outage", func() bool { return e.Stats().KeysFlushed == 2 })
	redistest.WaitFor(t, "the recovery logged", func() bool { return strings.Contains(logs.String(), "flush recovered") })
	if n := strings.Count(logs.String(), "flush failing; backing off"); n != 1 {
		t.Fatalf("%d lines of failing for one outage; want 1:\n%s", n, logs.String())
	}
}
