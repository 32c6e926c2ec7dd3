package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/queue"
)

// clock is an injectable Options.Now that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// published pops every window record from the queue's ready list, oldest
// first, with its message ID.
func published(t *testing.T, rdb redis.UniversalClient, readyKey string) (recs []engine.WindowRecord, ids []queue.ID) {
	t.Helper()
	raw, err := rdb.LRange(context.Background(), readyKey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(raw) - 1; i >= 0; i-- {
		id, body, err := queue.Decode([]byte(raw[i]))
		if err != nil {
			t.Fatal(err)
		}
		r, err := engine.ParseWindowRecord(body)
		if err != nil {
			t.Fatal(err)
		}
		recs, ids = append(recs, r), append(ids, id)
	}
	return recs, ids
}

func TestWindowedFinalizedOnce(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	clk := &clock{t: time.UnixMilli(1_700_000_000_000)}
	prefix := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: prefix, FlushInterval: 10 * time.Millisecond, Now: clk.Now})
	wo := engine.WindowOptions{Size: time.Second, QueuePrefix: prefix, Queue: "pv"}
	w, err := e.Windowed("pv:/home", wo)
	if err != nil {
		t.Fatal(err)
	}
	w.Add(3)
	w.AddAt(clk.Now().Add(1500*time.Millisecond), 7) // a later window
	clk.Set(clk.Now().Add(1100 * time.Millisecond))
	w.Add(5)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := w.Value(ctx, clk.Now()); err != nil || v != 12 {
		t.Fatalf("Value(window 2) = %d, %v; want 12", v, err)
	}
	keys := queue.KeysFor(prefix, "pv")
	redistest.WaitFor(t, "both windows registered", func() bool { return rdb.ZCard(ctx, keys.Ready[:len(keys.Ready)-5]+"windows:pending").Val() == 2 })

	r, err := e.StartRollup(ctx, engine.RollupOptions{QueuePrefix: prefix, Queue: "pv", Grace: 100 * time.Millisecond, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	// Window 2 is still open: only window 1 may be finalized.
	clk.Set(time.UnixMilli(1_700_000_002_050))
	redistest.WaitFor(t, "window 1 finalized", func() bool { return r.Finalized() == 1 })
	clk.Set(time.UnixMilli(1_700_000_002_100))
	redistest.WaitFor(t, "window 2 finalized", func() bool { return r.Finalized() == 2 })

	recs, ids := published(t, rdb, keys.Ready)
	want := []engine.WindowRecord{
		{Name: "pv:/home", StartMS: 1_700_000_000_000, SizeMS: 1000, Total: 3},
		{Name: "pv:/home", StartMS: 1_700_000_001_000, SizeMS: 1000, Total: 12},
	}
	if len(recs) != 2 || recs[0] != want[0] || recs[1] != want[1] {
		t.Fatalf("published %+v; want %+v", recs, want)
	}
	for i, r := range recs {
		if id := engine.WindowMessageID(r.Name, r.StartMS, r.SizeMS); ids[i] != id {
			t.Fatalf("record %d has ID %v; want WindowMessageID %v", i, ids[i], id)
		}
		if ttl := rdb.PTTL(ctx, w.Key(r.Start())).Val(); ttl <= 0 {
			t.Fatalf("window key %s has PTTL %v after finalization; want the retention", w.Key(r.Start()), ttl)
		}
	}

	// A late writer registering window 1 again does not republish it.
	e2 := newEngine(t, rdb, engine.Options{Namespace: prefix, Now: clk.Now})
	w2, _ := e2.Windowed("pv:/home", wo)
	w2.AddAt(time.UnixMilli(1_700_000_000_500), 1)
	redistest.WaitFor(t, "late registration dropped", func() bool {
		return rdb.ZCard(ctx, keys.Ready[:len(keys.Ready)-5]+"windows:pending").Val() == 0 && rdb.Exists(ctx, w.Key(time.UnixMilli(1_700_000_000_000))).Val() == 1
	})
	r.Stop()
	if recs, _ := published(t, rdb, keys.Ready); len(recs) != 2 || r.Finalized() != 2 {
		t.Fatalf("after a late registration: %d records, Finalized %d; want 2, 2", len(recs), r.Finalized())
	}
}

func TestWindowedInvalid(t *testing.T) {
	rdb := redistest.Client(t)
	e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t)})
	braced := newEngine(t, rdb, engine.Options{Namespace: "ns{x}:"})
	tests := []struct {
		what string
		err  error
	}{
		{"empty name", func() error { _, err := e.Windowed("", engine.WindowOptions{}); return err }()},
		{"tiny size", func() error { _, err := e.Windowed("a", engine.WindowOptions{Size: time.Microsecond}); return err }()},
		{"braced queue", func() error { _, err := e.Windowed("a", engine.WindowOptions{Queue: "q{"}); return err }()},
		{"braced namespace", func() error { _, err := braced.Windowed("a", engine.WindowOptions{}); return err }()},
		{"short grace", func() error {
			_, err := e.StartRollup(context.Background(), engine.RollupOptions{Grace: time.Millisecond})
			return err
		}()},
		{"negative retention", func() error {
			_, err := e.StartRollup(context.Background(), engine.RollupOptions{Retention: -1})
			return err
		}()},
	}
	for _, tt := range tests {
		if tt.what == "empty name" {
			if !errors.Is(tt.err, engine.ErrInvalidName) {
				t.Errorf("%s: %v; want ErrInvalidName", tt.what, tt.err)
			}
			continue
		}
		var oe *engine.OptionError
		if !errors.As(tt.err, &oe) || !errors.Is(tt.err, engine.ErrInvalidOptions) {
			t.Errorf("%s: %v; want an *OptionError", tt.what, tt.err)
		}
	}
}

// TestWindowedMemoryStaysFlat walks a windowed counter through 200
// windows: counters of windows long closed leave the table, and every
// delta still reaches Redis.
func TestWindowedMemoryStaysFlat(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t)
	ctx := context.Background()
	e := newEngine(t, rdb, engine.Options{Namespace: prefix, FlushInterval: time.Hour})
	w, err := e.Windowed("pv", engine.WindowOptions{Size: time.Second, QueuePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.UnixMilli(1_800_000_000_000)
	for i := range 200 {
		w.AddAt(t0.Add(time.Duration(i)*time.Second), int64(i+1))
	}
	if n := e.Stats().Counters; n > 20 {
		t.Fatalf("%d counters in memory after 200 windows; want at most about 17", n)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 100, 199} {
		if got, _ := rdb.Get(ctx, w.Key(t0.Add(time.Duration(i)*time.Second))).Int64(); got != int64(i+1) {
			t.Fatalf("window %d in Redis = %d; want %d", i, got, i+1)
		}
	}
}
