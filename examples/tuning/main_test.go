package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
)

// TestChoose runs a small version of the example's sweep against a real
// Redis. With a one-minute target every interval qualifies, so a
// recommendation must come back; nothing is asserted about timing.
func TestChoose(t *testing.T) {
	rdb := redistest.Client(t)
	p := profile()
	p.Keys, p.Rate, p.Goroutines, p.Duration, p.Progress = 100, 2000, 2, 150*time.Millisecond, io.Discard
	p.Intervals = []time.Duration{20 * time.Millisecond, 60 * time.Millisecond}
	p.Namespace = redistest.Prefix(t)
	chart := filepath.Join(t.TempDir(), "tuning.svg")
	var out strings.Builder
	iv, err := choose(context.Background(), rdb, p, time.Minute, chart, &out)
	if err != nil {
		t.Fatal(err)
	}
	if iv != 20*time.Millisecond && iv != 60*time.Millisecond {
		t.Fatalf("choose = %v; want one of the swept intervals", iv)
	}
	if !strings.Contains(out.String(), "<- recommended") {
		t.Errorf("table marks no recommendation:\n%s", out.String())
	}
	if fi, err := os.Stat(chart); err != nil || fi.Size() == 0 {
		t.Errorf("chart not written: %v", err)
	}
}
