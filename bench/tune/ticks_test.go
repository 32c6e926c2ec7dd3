package tune

import (
	"slices"
	"testing"
)

func TestLogTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []string // the labels, in order
	}{
		{4, 3000, []string{"5", "10", "20", "50", "100", "200", "500", "1,000", "2,000"}},
		{0.3, 2, []string{"0.5", "1", "2"}},
		{60, 90, []string{"60", "70", "80", "90"}}, // no 1-2-5 inside: every tick
		{61, 69, []string{"61", "69"}},             // no tick inside: the ends
		{1, 1e6, []string{"1", "10", "100", "1,000", "10,000", "100,000", "1,000,000"}},
		{0, 10, nil},
	} {
		var got []string
		for _, tk := range (logTicks{numberLabel}).Ticks(tc.lo, tc.hi) {
			if tk.Value < tc.lo || tk.Value > tc.hi*(1+1e-9) {
				t.Errorf("Ticks(%g, %g): tick %g outside the range", tc.lo, tc.hi, tk.Value)
			}
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Ticks(%g, %g) labels = %q; want %q", tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestDurationLabel(t *testing.T) {
	for _, tc := range []struct {
		ms   float64
		want string
	}{{0.5, "500µs"}, {20, "20ms"}, {300.00000000000006, "300ms"}, {2000, "2s"}} {
		if got := durationLabel(tc.ms); got != tc.want {
			t.Errorf("durationLabel(%g) = %q; want %q", tc.ms, got, tc.want)
		}
	}
}
