package target

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/engine/window"
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/lease"
	"github.com/abacus-go/abacus/queue"
	"github.com/abacus-go/abacus/serial"
)

// The tests in this file run every public operation of engine, flush,
// serial, lease and queue against the in-process server, so that `go run
// ./bench` on a machine without redis-server runs every row: each of
// abacus' Lua scripts (flush's exactly-once apply and record collection,
// the lease scripts, serial's reseed, the queue's take, settle, reclaim
// and drain scripts, the engine's window finalization) and the commands
// around them. They check that miniredis can stand in for the benchmark;
// what abacus promises about Redis is proven against redis-server
// elsewhere.

// inProcessClient starts the in-process server for t and returns a client.
func inProcessClient(t *testing.T) *redis.Client {
	t.Helper()
	tg, err := startInProcess()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.Close)
	c := tg.Client(0)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestInProcessEngine(t *testing.T) {
	for _, mode := range []flush.Mode{flush.ExactlyOnce, flush.AtLeastOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			rdb := inProcessClient(t)
			var errs errorLog
			e, err := engine.New(rdb, engine.Options{Delivery: mode, FlushInterval: time.Hour,
				KeyTTL: time.Hour, OnError: errs.add})
			if err != nil {
				t.Fatal(err)
			}
			c, err := e.Counter("held")
			if err != nil {
				t.Fatal(err)
			}
			for range 1000 {
				c.Inc()
			}
			c.Add(-10)
			for i := range 100 {
				if err := e.Add(fmt.Sprintf("name:%d", i%10), 2); err != nil {
					t.Fatal(err)
				}
			}
			// A key holding a non-integer refuses its delta (redis.pcall,
			// and cjson for the script's record of the refusal); the owner
			// then gives the delta up.
			rdb.Set(ctx, e.Key("bad"), "not a number", 0)
			if err := e.Add("bad", 5); err != nil {
				t.Fatal(err)
			}
			var kerr *flush.KeyError
			if err := e.Flush(ctx); !errors.As(err, &kerr) || kerr.Key != e.Key("bad") || !errors.Is(err, flush.ErrNotInteger) {
				t.Fatalf("Flush = %v; want a *flush.KeyError for %s wrapping flush.ErrNotInteger", err, e.Key("bad"))
			}
			if d, err := e.Discard("bad"); err != nil || d != 5 {
				t.Fatalf("Discard(bad) = %d, %v; want 5, nil", d, err)
			}
			if err := e.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if got := rdb.Get(ctx, e.Key("held")).Val(); got != "990" {
				t.Errorf("GET %s = %q; want 990", e.Key("held"), got)
			}
			if ttl := rdb.PTTL(ctx, e.Key("held")).Val(); ttl <= 0 {
				t.Errorf("PTTL of a counter with KeyTTL = %v; want positive", ttl)
			}
			c.Add(5) // unflushed: Value adds it to Redis'
			if v, err := c.Value(ctx); err != nil || v != 995 {
				t.Errorf("Counter.Value = %d, %v; want 995", v, err)
			}
			if v, err := e.Value(ctx, "name:3"); err != nil || v != 20 {
				t.Errorf("Value(name:3) = %d, %v; want 20", v, err)
			}
			if !e.Forget("name:3") {
				t.Error("Forget(name:3) = false; want true")
			}
			if err := e.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := rdb.Get(ctx, e.Key("held")).Val(); got != "995" {
				t.Errorf("GET %s after Close = %q; want 995", e.Key("held"), got)
			}
			st := e.Stats()
			if st.DeltaFlushed != 1000-10+200+5 || st.DiscardedDelta != 5 || st.LostBatches != 0 {
				t.Errorf("Stats: DeltaFlushed %d, DiscardedDelta %d, LostBatches %d; want 1195, 5, 0",
					st.DeltaFlushed, st.DiscardedDelta, st.LostBatches)
			}
			// miniredis has no CONFIG: the engine's eviction check says it
			// cannot tell, through OnError; the rest is the refused key.
			for _, err := range errs.all() {
				if !errors.Is(err, flush.ErrPolicyUnknown) && !errors.As(err, &kerr) {
					t.Errorf("OnError(%v); want only flush.ErrPolicyUnknown and the *flush.KeyError", err)
				}
			}
		})
	}
}

// TestInProcessWriterRecords: the exactly-once writer record (HSET of the
// server's TIME by the apply script) is collected once idle.
func TestInProcessWriterRecords(t *testing.T) {
	ctx := context.Background()
	rdb := inProcessClient(t)
	e, err := engine.New(rdb, engine.Options{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.Add("k", 1)
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Collect the writer record, as an engine's upkeep does for idle
	// writers: SCAN … TYPE hash and the collect script.
	redistest.WaitFor(t, "the idle writer record collected", func() bool {
		got, err := flush.CollectRecords(ctx, rdb, "abacus:writer:", time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		return got.Deleted == 1
	})
	if n := rdb.Exists(ctx, "abacus:writer:"+e.WriterID()).Val(); n != 0 {
		t.Errorf("writer record still there after collection")
	}
	if err := flush.CheckEviction(ctx, rdb, false); !errors.Is(err, flush.ErrPolicyUnknown) {
		t.Errorf("CheckEviction = %v; want flush.ErrPolicyUnknown (miniredis has no CONFIG)", err)
	}
}

func TestInProcessWindows(t *testing.T) {
	ctx := context.Background()
	rdb := inProcessClient(t)
	e, err := engine.New(rdb, engine.Options{FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	w, err := window.New(e, "pv", window.Options{Size: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	w.AddAt(past, 7)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := w.Value(ctx, past); err != nil || v != 7 {
		t.Fatalf("window Value = %d, %v; want 7", v, err)
	}
	q, err := queue.New(rdb, "windows", queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := window.StartRollup(ctx, e, q, window.RollupOptions{Grace: 10 * time.Millisecond, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	redistest.WaitFor(t, "the past window finalized", func() bool { return r.Finalized() == 1 })
	if !r.Owner() {
		t.Error("Rollup.Owner() = false while the only rollup finalizes")
	}
	var rec window.Record
	drainOne(t, q, func(m queue.Message) (err error) { rec, err = window.ParseRecord(m.Body); return err })
	if rec.Name != "pv" || rec.Total != 7 {
		t.Errorf("window record = %+v; want pv with total 7", rec)
	}
}

func TestInProcessSerial(t *testing.T) {
	ctx := context.Background()
	rdb := inProcessClient(t)
	a, err := serial.New(rdb, "ids", serial.Options{MinBlock: 10, MaxBlock: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	seen := map[int64]bool{}
	for range 25 {
		id, err := a.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("Next = %d twice", id)
		}
		seen[id] = true
	}
	ids, err := a.NextN(ctx, 15)
	if err != nil || len(ids) != 15 {
		t.Fatalf("NextN(15) = %d IDs, %v", len(ids), err)
	}
	if got, err := serial.Reseed(ctx, rdb, "ids", 1000); err != nil || got != 1000 {
		t.Fatalf("Reseed(1000) = %d, %v; want 1000", got, err)
	}
	if err := a.Resume(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if id, err := a.Next(ctx); err != nil || id <= 1000 {
		t.Fatalf("Next after Reseed(1000) and Resume = %d, %v; want above 1000", id, err)
	}

	// miniredis answers WAIT with 0 replicas, as a Redis without any does:
	// an Allocator that must wait for one refuses the block.
	w, err := serial.New(rdb, "ids-waited", serial.Options{Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var rerr *serial.ReplicationError
	if _, err := w.Next(wctx); !errors.As(err, &rerr) && !errors.As(w.Stats().LastError, &rerr) {
		t.Fatalf("Next waiting for a replica = %v (last fetch error %v); want a *serial.ReplicationError", err, w.Stats().LastError)
	}
}

func TestInProcessLease(t *testing.T) {
	ctx := context.Background()
	rdb := inProcessClient(t)
	l, err := lease.TryAcquire(ctx, rdb, "job", time.Minute, lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lease.TryAcquire(ctx, rdb, "job", time.Minute, lease.Options{}); !errors.Is(err, lease.ErrNotObtained) {
		t.Fatalf("second TryAcquire = %v; want ErrNotObtained", err)
	}
	if err := l.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ttl, err := l.TTL(ctx); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL = %v, %v; want within (0, 1m]", ttl, err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	l2, err := lease.Acquire(ctx, rdb, "job", time.Minute, lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Fence() <= l.Fence() {
		t.Errorf("fences %d then %d; want increasing", l.Fence(), l2.Fence())
	}
	l2.Release(ctx)

	// Expiry follows the wall clock (ClockTTL): a lease nobody renews
	// ends, and another process then obtains it.
	short, err := lease.TryAcquire(ctx, rdb, "short", 200*time.Millisecond, lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	<-short.Done()
	redistest.WaitFor(t, "the expired lease obtained again", func() bool {
		l, err := lease.TryAcquire(ctx, rdb, "short", time.Minute, lease.Options{})
		if err == nil {
			l.Release(ctx)
		}
		return err == nil
	})

	// The watchdog renews, and Hold runs its function while held.
	renewed, err := lease.Acquire(ctx, rdb, "renewed", 300*time.Millisecond, lease.Options{AutoRenew: true})
	if err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, "two renewals", func() bool { return renewed.Stats().Renewals >= 2 })
	if err := renewed.Release(ctx); err != nil {
		t.Fatalf("Release after renewals = %v", err)
	}
	hctx, stop := context.WithCancel(ctx)
	held, returned := make(chan bool), make(chan bool)
	go func() {
		lease.Hold(hctx, rdb, "held", time.Minute, lease.Options{AutoRenew: true}, func(ctx context.Context, l *lease.Lease) {
			held <- true
			<-ctx.Done()
		}, func(err error) { t.Errorf("Hold: %v", err) })
		close(returned)
	}()
	<-held
	stop()
	<-returned
}

func TestInProcessQueue(t *testing.T) {
	ctx := context.Background()
	rdb := inProcessClient(t)
	q, err := queue.New(rdb, "jobs", queue.Options{MaxAttempts: 2, BlockTimeout: 100 * time.Millisecond,
		Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := q.Push(ctx, []byte("a"), []byte("b"), []byte("poison"))
	if err != nil || len(ids) != 3 {
		t.Fatalf("Push = %d IDs, %v", len(ids), err)
	}
	if err := q.PushWithIDs(ctx, []queue.ID{queue.NewID()}, []byte("c")); err != nil {
		t.Fatal(err)
	}
	if st, err := q.Stats(ctx); err != nil || st.Ready != 4 {
		t.Fatalf("Stats = %+v, %v; want 4 ready", st, err)
	}
	var mu sync.Mutex
	handled := map[string]int{}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(cctx, func(_ context.Context, m queue.Message) error {
			mu.Lock()
			defer mu.Unlock()
			handled[string(m.Body)]++
			if string(m.Body) == "poison" {
				return errors.New("refused")
			}
			return nil
		})
	}()
	redistest.WaitFor(t, "three messages handled and the poison one dead-lettered", func() bool {
		st, err := q.Stats(ctx)
		mu.Lock()
		defer mu.Unlock()
		return err == nil && st.Dead == 1 && st.Ready == 0 && st.Processing == 0 &&
			handled["a"] == 1 && handled["b"] == 1 && handled["c"] == 1
	})
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Consume = %v; want context.Canceled", err)
	}
	if handled["poison"] != 2 {
		t.Errorf("poison message handled %d times; want MaxAttempts = 2", handled["poison"])
	}
	if n, err := q.Reclaim(ctx); err != nil || n != 0 {
		t.Errorf("Reclaim = %d, %v; want 0, nil (no consumer died)", n, err)
	}

	// Drain: in order, under the Drain lease.
	for _, b := range []string{"1", "2", "3"} {
		if _, err := q.Push(ctx, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	var order string
	if err := q.Drain(ctx, func(_ context.Context, m queue.Message) error {
		order += string(m.Body)
		if m.Fence <= 0 {
			return fmt.Errorf("message without a fence")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if order != "123" {
		t.Errorf("Drain order %q; want 123", order)
	}
}

// drainOne drains q, which must hold exactly one message, into h.
func drainOne(t *testing.T, q *queue.Queue, h func(queue.Message) error) {
	t.Helper()
	var n atomic.Int32
	err := q.Drain(context.Background(), func(_ context.Context, m queue.Message) error {
		n.Add(1)
		return h(m)
	})
	if err != nil || n.Load() != 1 {
		t.Fatalf("Drain handled %d messages, %v; want 1, nil", n.Load(), err)
	}
}

// errorLog collects the errors of an OnError callback.
type errorLog struct {
	mu   sync.Mutex
	errs []error // guarded by mu
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}
