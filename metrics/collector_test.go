package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/promtest"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/lease"
	"github.com/abacus-go/abacus/metrics"
	"github.com/abacus-go/abacus/queue"
	"github.com/abacus-go/abacus/serial"
)

// observed is one of each thing a Collector exports, in a state that
// stays put while the test reads it: the engine flushes only when told,
// the allocator's blocks are far from their prefetch point, the lease is
// not renewed, and nobody consumes the queue.
type observed struct {
	e *engine.Engine
	a *serial.Allocator
	l *lease.Lease
	q *queue.Queue
}

func newObserved(t *testing.T, rdb *redis.Client) observed {
	t.Helper()
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	e, err := engine.New(rdb, engine.Options{Namespace: prefix, FlushInterval: time.Hour, MaxReadAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	for i := range 30 {
		e.Add([]string{"a", "b", "c"}[i%3], 2)
	}
	e.Add("a", -7)
	uv, err := e.Unique("uv")
	if err != nil {
		t.Fatal(err)
	}
	uv.Add("visitor") // one register, one PFADD
	for range 2 {
		if err := e.AddOnce("calls", 5, "req-1"); err != nil { // the second is dropped
			t.Fatal(err)
		}
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Value(ctx, "a")
	e.Value(ctx, "a") // from the read cache

	a, err := serial.New(rdb, prefix+"ids", serial.Options{MinBlock: 1000, MaxBlock: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	if _, err := a.NextN(ctx, 10); err != nil {
		t.Fatal(err)
	}

	l, err := lease.TryAcquire(ctx, rdb, "owner", time.Minute, lease.Options{KeyPrefix: prefix + "lease:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })

	q, err := queue.New(rdb, "jobs", queue.Options{Prefix: prefix + "queue:"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Push(ctx, []byte("1"), []byte("2"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	return observed{e, a, l, q}
}

func (o observed) collector(t *testing.T) *metrics.Collector {
	t.Helper()
	c, err := metrics.New(metrics.Options{Engine: o.e, Serials: []*serial.Allocator{o.a},
		Leases: []*lease.Lease{o.l}, Queues: []*queue.Queue{o.q}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// gather registers c with a pedantic registry, which checks every
// collected metric against the descriptors, and returns the value of each
// series by name and labels, as in `name{k="v"}`.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			sort.Strings(labels)
			key := f.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			v := m.GetGauge().GetValue()
			if f.GetType().String() == "COUNTER" {
				v = m.GetCounter().GetValue()
			}
			out[key] = v
		}
	}
	return out
}

// TestValuesMatchStats checks every series the Collector exports against
// the Stats it comes from, and that there are no others.
func TestValuesMatchStats(t *testing.T) {
	o := newObserved(t, redistest.Client(t))
	got := gather(t, o.collector(t))
	es, ss, ls := o.e.Stats(), o.a.Stats(), o.l.Stats()
	qs, err := o.q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The figures this test caused, so that the table below is checked
	// against what happened and not only against itself.
	if es.DeltaFlushed != 58 || es.KeysFlushed != 4 || es.Reads != 2 || es.ReadCacheHits != 1 ||
		ss.Issued != 10 || ss.BlockSize != 1000 || ls.Attempts != 1 || qs.Ready != 3 {
		t.Fatalf("unexpected Stats: engine %+v; serial %+v; lease %+v; queue %+v", es, ss, ls, qs)
	}
	sl := `{serial="` + o.a.Key() + `"}`
	ll := `{lease="owner"}`
	ql := func(list string) string { return `{list="` + list + `",queue="jobs"}` }
	want := map[string]float64{
		"abacus_engine_flushes_total":                float64(es.Flushes),
		"abacus_engine_flush_failures_total":         float64(es.FailedFlushes),
		"abacus_engine_flush_round_trips_total":      float64(es.RoundTrips),
		"abacus_engine_flush_commands_total":         float64(es.Commands),
		"abacus_engine_flushed_keys_total":           4,
		"abacus_engine_flushed_delta":                58,
		"abacus_engine_resent_batches_total":         0,
		"abacus_engine_duplicate_batches_total":      0,
		"abacus_engine_key_errors_total":             0,
		"abacus_engine_lost_batches_total":           0,
		"abacus_engine_lost_delta":                   0,
		"abacus_engine_unreplicated_batches_total":   0,
		"abacus_engine_regressions_total":            0,
		"abacus_engine_regressed_delta":              0,
		"abacus_engine_pending_batches":              0,
		"abacus_engine_pending_keys":                 0,
		"abacus_engine_pending_delta":                0,
		"abacus_engine_last_flush_timestamp_seconds": float64(es.LastFlush.UnixNano()) / 1e9,
		"abacus_engine_last_flush_duration_seconds":  es.LastFlushDuration.Seconds(),
		"abacus_engine_max_flush_duration_seconds":   es.MaxFlushDuration.Seconds(),
		"abacus_engine_max_staleness_seconds":        es.MaxStaleness.Seconds(),
		"abacus_engine_counters":                     3,
		"abacus_engine_rejected_adds_total":          0,
		"abacus_engine_evicted_counters_total":       0,
		"abacus_engine_discarded_delta":              0,
		"abacus_engine_collected_records_total":      0,
		"abacus_engine_reads_total":                  2,
		"abacus_engine_read_cache_hits_total":        1,
		"abacus_engine_read_round_trips_total":       1,
		"abacus_engine_unique_counts":                1,
		"abacus_engine_unique_commands_total":        1,
		"abacus_engine_unique_registers_total":       1,
		"abacus_engine_unique_failures_total":        0,
		"abacus_engine_unique_refusals_total":        0,
		"abacus_engine_once_adds_total":              1,
		"abacus_engine_once_dropped_total":           1,
		"abacus_engine_once_applied_total":           1,
		"abacus_engine_once_seen_total":              0,
		"abacus_engine_once_lost_total":              0,
		"abacus_engine_once_pending":                 0,
		"abacus_engine_once_remembered_tokens":       1,
		"abacus_engine_once_backlogged_total":        0,

		"abacus_serial_issued_ids_total" + sl:          10,
		"abacus_serial_blocks_total" + sl:              float64(ss.Blocks),
		"abacus_serial_round_trips_total" + sl:         float64(ss.RoundTrips),
		"abacus_serial_fetch_errors_total" + sl:        0,
		"abacus_serial_unreplicated_blocks_total" + sl: 0,
		"abacus_serial_regressions_total" + sl:         0,
		"abacus_serial_waits_total" + sl:               float64(ss.Waits),
		"abacus_serial_failing_fetches" + sl:           0,
		"abacus_serial_wait_replicas" + sl:             float64(ss.Replicas),
		"abacus_serial_block_size" + sl:                1000,
		"abacus_serial_block_remaining" + sl:           990,
		"abacus_serial_blocks_ahead" + sl:              float64(ss.Ahead),
		"abacus_serial_ids_in_hand" + sl:               float64(ss.InHand),
		"abacus_serial_ids_per_second" + sl:            ss.Rate,
		"abacus_serial_runway_seconds" + sl:            ss.Runway.Seconds(),
		"abacus_serial_fetch_seconds" + sl:             ss.FetchTime.Seconds(),
		"abacus_serial_high_water" + sl:                float64(ss.HighWater),

		"abacus_lease_attempts_total" + ll:             1,
		"abacus_lease_round_trips_total" + ll:          float64(ls.RoundTrips),
		"abacus_lease_renewals_total" + ll:             0,
		"abacus_lease_held" + ll:                       1,
		"abacus_lease_fence" + ll:                      float64(o.l.Fence()),
		"abacus_lease_deadline_timestamp_seconds" + ll: float64(o.l.Deadline().UnixNano()) / 1e9,

		"abacus_queue_messages" + ql("ready"):          3,
		"abacus_queue_messages" + ql("processing"):     0,
		"abacus_queue_messages" + ql("dead"):           0,
		`abacus_queue_consumers{queue="jobs"}`:         0,
		`abacus_queue_read_errors_total{queue="jobs"}`: 0,
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s missing", k)
		} else if g != w {
			t.Errorf("%s = %g; want %g", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s = %g", k, got[k])
		}
	}

	// An ended lease stays exported, no longer held.
	if err := o.l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	got = gather(t, o.collector(t))
	if got["abacus_lease_held"+ll] != 0 || got["abacus_lease_deadline_timestamp_seconds"+ll] != 0 {
		t.Errorf("after Release: held %g, deadline %g; want 0, 0",
			got["abacus_lease_held"+ll], got["abacus_lease_deadline_timestamp_seconds"+ll])
	}
}

// TestQueueReadError: a queue whose lengths cannot be read is left out of
// the collection and counted, and the rest is still exported.
func TestQueueReadError(t *testing.T) {
	rdb := redistest.Client(t)
	o := newObserved(t, rdb)
	dead := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	dead.Close()
	q, err := queue.New(dead, "unreachable", queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := metrics.New(metrics.Options{Engine: o.e, Queues: []*queue.Queue{q}})
	if err != nil {
		t.Fatal(err)
	}
	for want := 1.0; want <= 2; want++ {
		got := gather(t, c)
		if got[`abacus_queue_read_errors_total{queue="unreachable"}`] != want {
			t.Errorf("read errors = %g; want %g", got[`abacus_queue_read_errors_total{queue="unreachable"}`], want)
		}
		if _, ok := got[`abacus_queue_messages{list="ready",queue="unreachable"}`]; ok {
			t.Error("messages of an unreadable queue exported")
		}
		if got["abacus_engine_flushed_delta"] != 58 {
			t.Errorf("abacus_engine_flushed_delta = %g; want 58 beside the failing queue", got["abacus_engine_flushed_delta"])
		}
	}
}

// TestPromtoolCheckMetrics runs Prometheus' own linter on what the
// Collector serves over HTTP: names, types, units and help strings.
func TestPromtoolCheckMetrics(t *testing.T) {
	o := newObserved(t, redistest.Client(t))
	reg := prometheus.NewRegistry()
	reg.MustRegister(o.collector(t))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d\n%s", rec.Code, rec.Body)
	}
	exposition := rec.Body.Bytes()
	for _, family := range []string{"abacus_engine_flushes_total counter", "abacus_serial_issued_ids_total counter",
		"abacus_lease_held gauge", "abacus_queue_messages gauge"} {
		if !strings.Contains(string(exposition), "# TYPE "+family+"\n") {
			t.Errorf("exposition lacks # TYPE %s", family)
		}
	}
	promtest.CheckMetrics(t, exposition)
}

func TestNewRejectsBadOptions(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	q, _ := queue.New(rdb, "q", queue.Options{Prefix: prefix})
	a, _ := serial.New(rdb, prefix+"s", serial.Options{})
	defer a.Close(context.Background())
	l, err := lease.TryAcquire(ctx, rdb, "l", time.Minute, lease.Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	for _, tc := range []struct {
		name  string
		opts  metrics.Options
		field string
	}{
		{"negative timeout", metrics.Options{QueueTimeout: -time.Second}, "Options.QueueTimeout"},
		{"nil serial", metrics.Options{Serials: []*serial.Allocator{a, nil}}, "Options.Serials[1]"},
		{"nil lease", metrics.Options{Leases: []*lease.Lease{nil}}, "Options.Leases[0]"},
		{"nil queue", metrics.Options{Queues: []*queue.Queue{nil}}, "Options.Queues[0]"},
		{"same serial twice", metrics.Options{Serials: []*serial.Allocator{a, a}}, "Options.Serials[1]"},
		{"same lease twice", metrics.Options{Leases: []*lease.Lease{l, l}}, "Options.Leases[1]"},
		{"same queue twice", metrics.Options{Queues: []*queue.Queue{q, q}}, "Options.Queues[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := metrics.New(tc.opts)
			var ie *metrics.InvalidError
			if c != nil || !errors.As(err, &ie) || ie.Field != tc.field || !errors.Is(err, metrics.ErrInvalid) {
				t.Fatalf("New = %v, %v; want an *InvalidError for %s wrapping ErrInvalid", c, err, tc.field)
			}
		})
	}
}

// TestRegisterPerLease: Collectors of different leases register side by
// side, one for a lease already exported does not, and unregistering
// frees the name for the next acquisition (the lease.Hold pattern).
func TestRegisterPerLease(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	acquire := func(name string) *metrics.Collector {
		l, err := lease.TryAcquire(ctx, rdb, name, time.Minute, lease.Options{KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Release(ctx) })
		c, err := metrics.New(metrics.Options{Leases: []*lease.Lease{l}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	reg := prometheus.NewPedanticRegistry()
	x1, y := acquire("x"), acquire("y")
	if err := reg.Register(x1); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(y); err != nil {
		t.Fatalf("registering a second lease's Collector: %v", err)
	}
	x2, err := metrics.New(metrics.Options{Leases: []*lease.Lease{mustTryAcquire(t, rdb, prefix, "x")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(x2); err == nil {
		t.Fatal("registered two Collectors exporting lease x")
	}
	reg.Unregister(x1)
	if err := reg.Register(x2); err != nil {
		t.Fatalf("registering lease x again after Unregister: %v", err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// mustTryAcquire obtains a lease of name after releasing whoever holds it
// by deleting its key: the test plays the next holder.
func mustTryAcquire(t *testing.T, rdb *redis.Client, prefix, name string) *lease.Lease {
	t.Helper()
	key, _ := lease.Keys(prefix, name)
	rdb.Del(context.Background(), key)
	l, err := lease.TryAcquire(context.Background(), rdb, name, time.Minute, lease.Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return l
}

// TestOnlyMetricsImportsPrometheus: the library's packages do not depend
// on client_golang; only programs that import package metrics do.
func TestOnlyMetricsImportsPrometheus(t *testing.T) {
	// go test puts its own go command first on PATH.
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}",
		"../engine", "../serial", "../lease", "../queue", "../shard", "../flush").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "prometheus") {
			t.Errorf("a library package depends on %s", p)
		}
	}
}
