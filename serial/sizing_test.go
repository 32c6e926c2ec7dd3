package serial

import (
	"fmt"
	"testing"
	"time"
)

func TestNextSize(t *testing.T) {
	const min, max = 100, 100_000
	target := 10 * time.Second
	tests := []struct {
		name      string
		cur, used int64
		elapsed   time.Duration
		want      int64
	}{
		{"on target keeps size", 1000, 500, 5 * time.Second, 1000},
		{"twice as fast grows ×2", 1000, 500, 2500 * time.Millisecond, 2000},
		{"much faster grows at most ×4", 1000, 500, time.Millisecond, 4000},
		{"instant grows at most ×4", 1000, 500, 0, 4000},
		{"slower shrinks", 1000, 500, 8 * time.Second, 625},
		{"much slower shrinks at most ×½", 1000, 500, time.Hour, 500},
		{"never below MinBlock", 150, 10, time.Hour, min},
		{"never above MaxBlock", 90_000, 90_000, time.Millisecond, max},
		{"nothing used keeps size", 1000, 0, time.Second, 1000},
		{"empty block starts at MinBlock", 0, 0, 0, min},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nextSize(tt.cur, tt.used, tt.elapsed, target, min, max)
			if got != tt.want {
				t.Errorf("nextSize(%d, %d, %v) = %d; want %d", tt.cur, tt.used, tt.elapsed, got, tt.want)
			}
		})
	}
}

func TestNextSizeConverges(t *testing.T) {
	// A steady 20,000 IDs/s with a 10s target wants 200,000, capped at
	// MaxBlock 100,000: from MinBlock that takes 5 blocks at ×4 per step.
	size, steps := int64(DefaultMinBlock), 0
	for size < DefaultMaxBlock {
		used := size / 2
		elapsed := time.Duration(float64(used) / 20_000 * float64(time.Second))
		size = nextSize(size, used, elapsed, DefaultTargetLifetime, DefaultMinBlock, DefaultMaxBlock)
		steps++
		if steps > 20 {
			t.Fatalf("no convergence after %d steps; size %d", steps, size)
		}
	}
	if steps != 5 {
		t.Errorf("steps from %d to %d = %d; want 5", DefaultMinBlock, DefaultMaxBlock, steps)
	}
}

func TestTriggerOffset(t *testing.T) {
	tests := []struct {
		size      int64
		threshold float64
		want      int64
	}{
		{100, 0.5, 50},
		{100, 0.1, 90},
		{100, 0.9, 10},
		{1, 0.5, 1},
		{3, 0.5, 2},
		{100, 0.999, 1},
		{100, 1e-9, 100},
		{0, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("size=%d,threshold=%v", tt.size, tt.threshold), func(t *testing.T) {
			if got := triggerOffset(tt.size, tt.threshold); got != tt.want {
				t.Errorf("triggerOffset(%d, %v) = %d; want %d", tt.size, tt.threshold, got, tt.want)
			}
		})
	}
}

func TestReserve(t *testing.T) {
	const max = 100_000
	tests := []struct {
		name    string
		reserve time.Duration // Options.Reserve
		want    int           // replicas the last fetch waited for
		size    int64         // block size
		rate    float64       // measured IDs/s
		ids     int64
	}{
		{"auto without replicas: none", 0, 0, 1000, 100, 0},
		{"auto with a replica: 60s of blocks", 0, 1, 1000, 100, 6000},
		{"rate unknown: none", 0, 1, 1000, 0, 0},
		{"burst does not count below MaxBlock", 0, 1, 1000, 1e9, 6000},
		{"at MaxBlock the measured rate counts", 0, 1, max, 50_000, 3_000_000},
		{"at MaxBlock, at most 64 blocks", 0, 1, max, 1e9, 64 * max},
		{"at MaxBlock, never below 60s of blocks", 0, 1, max, 100, 600_000},
		{"explicit, without replicas", 20 * time.Second, 0, 1000, 100, 2000},
		{"negative: none", -1, 1, 1000, 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Allocator{opts: Options{Reserve: tt.reserve, MaxBlock: max, TargetLifetime: 10 * time.Second}, want: tt.want, size: tt.size, rate: tt.rate}
			if got := a.reserveLocked(); got != tt.ids {
				t.Errorf("reserve(Reserve %v, want %d, size %d, rate %v) = %d; want %d", tt.reserve, tt.want, tt.size, tt.rate, got, tt.ids)
			}
		})
	}
}
