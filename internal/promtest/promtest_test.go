package promtest

import (
	"fmt"
	"strings"
	"testing"
)

// fatalRecorder is a testing.TB whose Fatalf records the failure instead
// of ending the test.
type fatalRecorder struct {
	testing.TB
	failure string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.failure = fmt.Sprintf(format, args...) }

func TestCheckMetrics(t *testing.T) {
	for _, tc := range []struct {
		name, exposition, finding string
	}{
		{"conventional", "# HELP x_seconds_total Time spent.\n# TYPE x_seconds_total counter\nx_seconds_total 1\n", ""},
		{"counter without _total", "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests 1\n", `"_total" suffix`},
		{"milliseconds", "# HELP x_latency_milliseconds Latency.\n# TYPE x_latency_milliseconds gauge\nx_latency_milliseconds 1\n", `base unit "seconds"`},
		{"no help", "# TYPE x_things gauge\nx_things 1\n", "no help text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &fatalRecorder{TB: t}
			CheckMetrics(r, []byte(tc.exposition))
			if tc.finding == "" && r.failure != "" || !strings.Contains(r.failure, tc.finding) {
				t.Errorf("CheckMetrics failed with %q; want a failure naming %q", r.failure, tc.finding)
			}
		})
	}
}
