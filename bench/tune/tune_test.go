package tune_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abacus-go/abacus/bench/tune"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestRun sweeps two intervals with a small load and checks the report's
// shape and exact totals; it asserts nothing about timing.
func TestRun(t *testing.T) {
	rdb := redistest.Client(t)
	rep, err := tune.Run(context.Background(), rdb, tune.Options{
		Keys: 50, Goroutines: 2, Rate: 5000, Duration: 200 * time.Millisecond,
		Intervals: []time.Duration{10 * time.Millisecond, 40 * time.Millisecond},
		Namespace: redistest.Prefix(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 2 {
		t.Fatalf("%d steps; want 2", len(rep.Steps))
	}
	for _, s := range rep.Steps {
		if !s.Exact {
			t.Errorf("interval %v: Redis totals differ from what was added", s.Interval)
		}
		if s.AddsPerSec <= 0 || s.RedisCommandsPerSec <= 0 || s.RedisBytesPerSec <= 0 {
			t.Errorf("interval %v: adds/s %g, commands/s %g, bytes/s %g; want all positive",
				s.Interval, s.AddsPerSec, s.RedisCommandsPerSec, s.RedisBytesPerSec)
		}
		if s.Bound < s.Interval {
			t.Errorf("interval %v: bound %v below the interval", s.Interval, s.Bound)
		}
	}

	dir := t.TempDir()
	for _, name := range []string{"tune.png", "tune.svg"} {
		if err := rep.Plot(filepath.Join(dir, name), time.Minute); err != nil {
			t.Fatalf("Plot %s: %v", name, err)
		}
	}
	f, _ := os.Open(filepath.Join(dir, "tune.png"))
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("tune.png does not decode: %v", err)
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "tune.svg"))
	if !strings.Contains(string(svg), "flush interval") {
		t.Error("tune.svg lacks the x axis label")
	}

	var b bytes.Buffer
	if err := rep.WriteCSV(&b, time.Minute); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "interval_ms" {
		t.Fatalf("CSV = %q, %v; want a header and 2 rows", rows, err)
	}
	b.Reset()
	rep.WriteTable(&b, time.Minute)
	if !strings.Contains(b.String(), "<- recommended") {
		t.Errorf("table with a 1m target recommends nothing:\n%s", b.String())
	}
}

func TestRecommend(t *testing.T) {
	ms := time.Millisecond
	rep := &tune.Report{Steps: []tune.Step{
		{Interval: 10 * ms, Bound: 30 * ms, RedisCommandsPerSec: 9000, Exact: true},
		{Interval: 100 * ms, Bound: 120 * ms, RedisCommandsPerSec: 1000, Exact: true},
		{Interval: 250 * ms, Bound: 260 * ms, RedisCommandsPerSec: 400, Exact: false},
		{Interval: time.Second, Bound: 1010 * ms, RedisCommandsPerSec: 100, Exact: true},
	}}
	for _, tc := range []struct {
		target time.Duration
		want   time.Duration // 0: none
	}{
		{500 * ms, 100 * ms}, // 250ms is cheaper but its totals were wrong
		{2 * time.Second, time.Second},
		{50 * ms, 10 * ms},
		{20 * ms, 0},
	} {
		rec := rep.Recommend(tc.target)
		got := time.Duration(0)
		if rec.Step != nil {
			got = rec.Step.Interval
		}
		if got != tc.want {
			t.Errorf("Recommend(%v) = %v (%s); want %v", tc.target, got, rec.Reason, tc.want)
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []tune.Options{
		{Keys: -1}, {Skew: 0.5}, {Rate: -3}, {Intervals: []time.Duration{0}}, {Probes: -1},
	} {
		if _, err := tune.Run(context.Background(), nil, o); !errors.Is(err, tune.ErrInvalid) {
			t.Errorf("Run(%+v) error = %v; want ErrInvalid", o, err)
		}
	}
}
