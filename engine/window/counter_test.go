package window_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/engine/window"
	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/redistest"
)

func TestInvalid(t *testing.T) {
	rdb := redistest.Client(t)
	e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t)})
	braced := newEngine(t, rdb, engine.Options{Namespace: "ns{x}:"})
	q := newQueue(t, rdb, redistest.Prefix(t), "q")
	tests := []struct {
		field string
		err   error
	}{
		{"name", func() error { _, err := window.New(e, "", window.Options{}); return err }()},
		{"name", func() error { // fits alone, not with the group and the window
			_, err := window.New(e, strings.Repeat("n", engine.MaxNameLen-10), window.Options{})
			return err
		}()},
		{"Options.Size", func() error { _, err := window.New(e, "a", window.Options{Size: time.Microsecond}); return err }()},
		{"Group", func() error { _, err := window.New(e, "a", window.Options{Group: "g{"}); return err }()},
		{"engine Namespace", func() error { _, err := window.New(braced, "a", window.Options{}); return err }()},
		{"RollupOptions.Grace", func() error {
			_, err := window.StartRollup(context.Background(), e, q, window.RollupOptions{Grace: time.Millisecond})
			return err
		}()},
		{"RollupOptions.Retention", func() error {
			_, err := window.StartRollup(context.Background(), e, q, window.RollupOptions{Retention: -1})
			return err
		}()},
	}
	for _, tt := range tests {
		var ie *window.InvalidError
		if !errors.Is(tt.err, window.ErrInvalid) || !errors.As(tt.err, &ie) || ie.Field != tt.field {
			t.Errorf("%v; want an *InvalidError for %s", tt.err, tt.field)
		}
	}
}

// TestMemoryStaysFlat walks a windowed counter through 200 windows:
// counters of windows long closed leave the engine's table, and every
// delta still reaches Redis.
func TestMemoryStaysFlat(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t), FlushInterval: time.Hour})
	w, err := window.New(e, "pv", window.Options{Size: time.Second})
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

// TestSizesDoNotShareKeys: a 1-minute and a 1-hour window of one name
// and group starting at the same instant keep their own counts, and both
// are published.
func TestSizesDoNotShareKeys(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	e := newEngine(t, rdb, engine.Options{Namespace: ns})
	minute, _ := window.New(e, "pv", window.Options{Size: time.Minute})
	hour, _ := window.New(e, "pv", window.Options{Size: time.Hour})
	t0 := time.Now().Truncate(time.Hour).Add(-2 * time.Hour)
	minute.AddAt(t0, 1)
	hour.AddAt(t0, 100)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if minute.Key(t0) == hour.Key(t0) {
		t.Fatalf("both windows at key %s", minute.Key(t0))
	}
	for _, tc := range []struct {
		w    *window.Counter
		want int64
	}{{minute, 1}, {hour, 100}} {
		if got, err := tc.w.Value(ctx, t0); err != nil || got != tc.want {
			t.Errorf("%v window = %d, %v; want %d", tc.w.Size(), got, err, tc.want)
		}
	}
	r := startRollup(t, e, newQueue(t, rdb, ns, "q"), window.RollupOptions{Interval: 10 * time.Millisecond})
	redistest.WaitFor(t, "both windows published", func() bool { return r.Finalized() == 2 })
}

// TestRegisteredByTheFlushAfterAnOutage: a window whose counts reach
// Redis only after a long outage is still registered (with its first
// flush) and published.
func TestRegisteredByTheFlushAfterAnOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	direct := srv.Client(t)
	proxy := faultproxy.New(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	proxy.Refuse(true)
	e := newEngine(t, rdb, engine.Options{FlushInterval: 10 * time.Millisecond})
	w, _ := window.New(e, "pv", window.Options{Size: time.Minute})
	t0 := time.Now().Add(-time.Hour) // closed long ago: past any grace
	w.AddAt(t0, 42)
	redistest.WaitFor(t, "failed flushes", func() bool { return e.Stats().FailedFlushes >= 3 })
	proxy.Refuse(false)
	redistest.WaitFor(t, "the window in Redis", func() bool {
		v, _ := direct.Get(ctx, w.Key(t0)).Int64()
		return v == 42
	})
	r := startRollup(t, e, newQueue(t, direct, "", "q"), window.RollupOptions{Interval: 10 * time.Millisecond})
	redistest.WaitFor(t, "the window published", func() bool { return r.Finalized() == 1 })
}

// TestAddAfterCloseIsRejected: a windowed Add on a closed engine is
// dropped and counted like any other.
func TestAddAfterCloseIsRejected(t *testing.T) {
	rdb := redistest.Client(t)
	e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t)})
	w, _ := window.New(e, "pv", window.Options{})
	w.Inc()
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Inc()                            // the current window
	w.AddAt(time.UnixMilli(60_000), 1) // a new one
	if n := e.Stats().RejectedAdds; n != 2 {
		t.Fatalf("RejectedAdds = %d; want 2", n)
	}
}
