package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/abacus-go/abacus/internal/redistest"
)

// short keeps the rows tiny: these tests check the plumbing and the
// report, never the figures.
var short = []string{"-duration", "50ms", "-concurrency", "4", "-keys", "100", "-pipeline", "10", "-quiet"}

func runBench(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("run(%q) = exit %d\nstderr:\n%s", args, code, errb.String())
	}
	return out.String(), errb.String()
}

// TestCompareJSON checks that -json output parses, follows the documented
// schema, and that every row ran with exact totals on a real Redis.
func TestCompareJSON(t *testing.T) {
	rdb := redistest.Client(t)
	out, _ := runBench(t, append([]string{"compare", "-json", "-redis", "redis://" + rdb.Options().Addr}, short...)...)
	var rep Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-json output is not JSON: %v\n%s", err, out)
	}
	if rep.Schema != SchemaCompare || rep.Redis.Kind != "url" || !rep.Redis.Lua {
		t.Fatalf("schema, redis = %q, %+v; want %q, a url with Lua", rep.Schema, rep.Redis, SchemaCompare)
	}
	if len(rep.Results) != len(scenarios(compareConfig{})) {
		t.Fatalf("%d results; want one per scenario (%d)", len(rep.Results), len(scenarios(compareConfig{})))
	}
	for _, r := range rep.Results {
		if r.Error != "" || r.Skipped != "" {
			t.Errorf("%s: error %q, skipped %q", r.ID, r.Error, r.Skipped)
		}
		if r.RedisCommands <= 0 || r.Group != "queue" && (r.Ops <= 0 || r.OpsPerSec <= 0) {
			t.Errorf("%s: ops %d, ops/s %g, Redis commands %d; want all positive", r.ID, r.Ops, r.OpsPerSec, r.RedisCommands)
		}
		if r.Verified != nil && !*r.Verified {
			t.Errorf("%s: Redis total differs from what was added: %s", r.ID, r.Note)
		}
	}
	// The documented field names, read without the Go types.
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	for _, k := range []string{"schema", "started", "redis", "host", "config", "results", "summary"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks top-level %q", k)
		}
	}
	row := raw["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "name", "group", "goroutines", "seconds", "ops", "ops_per_sec",
		"redis_commands", "redis_commands_per_sec", "ops_per_command", "baseline", "ratio", "verified"} {
		if _, ok := row[k]; !ok {
			t.Errorf("JSON result lacks %q", k)
		}
	}
}

// TestCompareInProcess runs the table on the embedded fallback that a
// machine without redis-server gets: it must say so, and run every row,
// exactly-once included, with exact totals.
func TestCompareInProcess(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("REDIS_URL", "")
	out, stderr := runBench(t, append([]string{"-only", "counter"}, short...)...)
	for _, want := range []string{"engine Counter.Inc, exactly-once", "engine Counter.Inc, at-least-once", "total exact", "naive INCR, pool of 4"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "MISMATCH") || strings.Contains(out, "error:") || strings.Contains(out, "skipped") {
		t.Errorf("table reports a failure or a skipped row:\n%s", out)
	}
	if !strings.Contains(stderr, "IN-PROCESS miniredis") {
		t.Errorf("stderr does not name the in-process server:\n%s", stderr)
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"nosuch"}, &out, &errb); code != 2 {
		t.Errorf("unknown subcommand: exit %d; want 2", code)
	}
	if code := run(context.Background(), []string{"-duration", "0"}, &out, &errb); code != 2 {
		t.Errorf("-duration 0: exit %d; want 2", code)
	}
}

// TestTuneCommand runs a two-interval sweep through the CLI and checks the
// files it promises.
func TestTuneCommand(t *testing.T) {
	rdb := redistest.Client(t)
	dir := t.TempDir()
	out, _ := runBench(t, "tune", "-redis", "redis://"+rdb.Options().Addr, "-intervals", "10ms,30ms",
		"-duration", "150ms", "-keys", "20", "-rate", "2000", "-max-staleness", "1m",
		"-plot", dir+"/tune.png", "-csv", dir+"/tune.csv")
	for _, want := range []string{"<- recommended", "recommendation for -max-staleness 1m0s: flush interval", "chart: "} {
		if !strings.Contains(out, want) {
			t.Errorf("tune output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"tune.png", "tune.csv"} {
		if fi, err := os.Stat(dir + "/" + f); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}
