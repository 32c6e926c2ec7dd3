// Package promtest gives tests Prometheus' own tools from Debian's
// prometheus package: promtool, to check an exposition, and a prometheus
// server scraping a test's endpoint on a free loopback port, to read
// series back through its HTTP API.
//
// Like the Redis tests (see internal/redistest), a test that needs them
// skips when they are not on PATH, unless REQUIRE_REDIS=1 (set by CI,
// which installs them), in which case it fails.
package promtest

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/abacus-go/abacus/internal/redistest"
)

// lookPath returns the path of the named tool, or skips t (fails it under
// REQUIRE_REDIS=1) when it is not installed.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := name + " is not on PATH (apt-get install prometheus)"
		if redistest.Required() {
			t.Fatalf("%s, and REQUIRE_REDIS=1 asks for every test to run", msg)
		}
		t.Skip(msg)
	}
	return path
}

// CheckMetrics runs `promtool check metrics` on exposition, metrics in
// the Prometheus text format, and fails t with promtool's findings when it
// reports any: names, types, units and help strings that break
// Prometheus' conventions.
func CheckMetrics(t testing.TB, exposition []byte) {
	t.Helper()
	cmd := exec.Command(lookPath(t, "promtool"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
