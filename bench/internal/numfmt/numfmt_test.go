package numfmt

import "testing"

func TestThousands(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {999.4, "999"}, {999.5, "1,000"}, {12345678, "12,345,678"}, {100000, "100,000"}} {
		if got := Thousands(tc.v); got != tc.want {
			t.Errorf("Thousands(%g) = %q; want %q", tc.v, got, tc.want)
		}
	}
}
