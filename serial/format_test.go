package serial

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	day := time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		id   int64
		l    Layout
		want string
	}{
		{"bare", 123, Layout{}, "123"},
		{"padded", 123, Layout{Width: 6}, "000123"},
		{"prefix date padded", 123, Layout{Prefix: "ORD-", Date: day, Width: 6}, "ORD-20261125-000123"},
		{"wider than width is not truncated", 12345678, Layout{Prefix: "ORD-", Width: 6}, "ORD-12345678"},
		{"exact width", 999999, Layout{Width: 6}, "999999"},
		{"custom date format", 7, Layout{Prefix: "INV/", Date: day, DateFormat: "2006/01/", Width: 4}, "INV/2026/11/0007"},
		{"date without separator", 42, Layout{Date: day, DateFormat: "060102", Width: 3}, "261125042"},
		{"date in its location", 1, Layout{Date: day.In(time.FixedZone("UTC+2", 2*3600)), Width: 2}, "20261126-01"},
		{"negative width", 5, Layout{Width: -3}, "5"},
		{"huge width capped", 5, Layout{Width: 1000}, "0000000000000000005"},
		{"max int64", 1<<63 - 1, Layout{Width: 6}, "9223372036854775807"},
		{"negative id", -5, Layout{Width: 3}, "-005"},
		{"min int64", -1 << 63, Layout{}, "-9223372036854775808"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Format(tt.id, tt.l); got != tt.want {
				t.Errorf("Format(%d, %+v) = %q; want %q", tt.id, tt.l, got, tt.want)
			}
		})
	}
}

func TestAppendFormatDoesNotAllocate(t *testing.T) {
	l := Layout{Prefix: "ORD-", Date: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), Width: 6}
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendFormat(buf[:0], 123, l)
	})
	if allocs != 0 {
		t.Errorf("AppendFormat allocs = %v; want 0", allocs)
	}
}
