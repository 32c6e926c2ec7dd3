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
		floor     int64
		want      int64
	}{
		{"on target keeps size", 1000, 500, 5 * time.Second, 0, 1000},
		{"twice as fast grows ×2", 1000, 500, 2500 * time.Millisecond, 0, 2000},
		{"much faster grows at most ×4", 1000, 500, time.Millisecond, 0, 4000},
		{"instant grows at most ×4", 1000, 500, 0, 0, 4000},
		{"slower shrinks", 1000, 500, 8 * time.Second, 0, 625},
		{"much slower shrinks at most ×½", 1000, 500, time.Hour, 0, 500},
		{"never below MinBlock", 150, 10, time.Hour, 0, min},
		{"never above MaxBlock", 90_000, 90_000, time.Millisecond, 0, max},
		{"nothing used keeps size", 1000, 0, time.Second, 0, 1000},
		{"empty block starts at MinBlock", 0, 0, 0, 0, min},
		{"slow fetches ask for more than the rate", 1000, 500, 5 * time.Second, 3000, 3000},
		{"slow fetches grow at most ×4", 1000, 500, 5 * time.Second, 9000, 4000},
		{"slow fetches stop a shrink", 1000, 500, time.Hour, 800, 800},
		{"the rate asks for more than slow fetches", 1000, 500, 2500 * time.Millisecond, 1500, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nextSize(tt.cur, tt.used, tt.elapsed, target, tt.floor, min, max)
			if got != tt.want {
				t.Errorf("nextSize(%d, %d, %v, floor %d) = %d; want %d", tt.cur, tt.used, tt.elapsed, tt.floor, got, tt.want)
			}
		})
	}
}

func TestNextSizeConverges(t *testing.T) {
	tests := []struct {
		rate      float64 // IDs/s
		maxBlock  int64
		want      int64
		wantSteps int
	}{
		// 20,000 IDs/s × 10s wants 200,000, capped at 100,000: from
		// MinBlock, 5 blocks at ×4 per step.
		{20_000, 100_000, 100_000, 5},
		// 100M IDs/s wants 10^9, the default cap: 12 blocks.
		{1e8, DefaultMaxBlock, DefaultMaxBlock, 12},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rate=%g", tt.rate), func(t *testing.T) {
			size, steps := int64(DefaultMinBlock), 0
			for size < tt.want {
				used := size / 2
				elapsed := time.Duration(float64(used) / tt.rate * float64(time.Second))
				size = nextSize(size, used, elapsed, DefaultTargetLifetime, 0, DefaultMinBlock, tt.maxBlock)
				steps++
				if steps > 30 {
					t.Fatalf("no convergence after %d steps; size %d", steps, size)
				}
			}
			if size != tt.want || steps != tt.wantSteps {
				t.Errorf("from %d: size %d after %d steps; want %d after %d", DefaultMinBlock, size, steps, tt.want, tt.wantSteps)
			}
		})
	}
}

func TestTriggerOffset(t *testing.T) {
	tests := []struct {
		size      int64
		threshold float64
		cover     int64
		want      int64
	}{
		{100, 0.5, 0, 50},
		{100, 0.1, 0, 90},
		{100, 0.9, 0, 10},
		{1, 0.5, 0, 1},
		{3, 0.5, 0, 2},
		{100, 0.999, 0, 1},
		{100, 1e-9, 0, 100},
		{0, 0.5, 0, 0},
		{100, 0.5, 30, 50},  // the threshold leaves more than the lag needs
		{100, 0.5, 70, 30},  // the lag needs more: fetch earlier
		{100, 0.5, 500, 1},  // more than the block: fetch at its first ID
		{100, 1e-9, 10, 90}, // the lag moves even a disabled prefetch
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("size=%d,threshold=%v,cover=%d", tt.size, tt.threshold, tt.cover), func(t *testing.T) {
			if got := triggerOffset(tt.size, tt.threshold, tt.cover); got != tt.want {
				t.Errorf("triggerOffset(%d, %v, %d) = %d; want %d", tt.size, tt.threshold, tt.cover, got, tt.want)
			}
		})
	}
}

func TestNextLag(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		lag, took time.Duration
		want      time.Duration
	}{
		{"first fetch", 0, 300 * ms, 300 * ms},
		{"a slower fetch raises it at once", 300 * ms, 800 * ms, 800 * ms},
		{"a faster fetch lets it decay by 1/8", 800 * ms, 100 * ms, 700 * ms},
		{"decay stops at the fetch measured", 800 * ms, 750 * ms, 750 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextLag(tt.lag, tt.took); got != tt.want {
				t.Errorf("nextLag(%v, %v) = %v; want %v", tt.lag, tt.took, got, tt.want)
			}
		})
	}
}

func TestCover(t *testing.T) {
	tests := []struct {
		rate float64
		lag  time.Duration
		want int64
	}{
		{0, time.Second, 0}, // rate unknown
		{1e6, 0, 0},         // no fetch yet
		{1e6, 100 * time.Microsecond, 400},
		{5e7, 400 * time.Millisecond, 80_000_000}, // 64 goroutines on 2 Ps
	}
	for _, tt := range tests {
		if got := cover(tt.rate, tt.lag); got != tt.want {
			t.Errorf("cover(%g IDs/s, %v) = %d; want %d", tt.rate, tt.lag, got, tt.want)
		}
	}
}
