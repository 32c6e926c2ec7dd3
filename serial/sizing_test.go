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
