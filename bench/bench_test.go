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
var short = []string{"-duration", "50ms", "-rounds", "2", "-concurrency", "4", "-keys", "100", "-pipeline", "10", "-quiet"}

func runBench(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("run(%q) = exit %d\nstderr:\n%s", args, code, errb.String())
	}
	return out.String(), errb.String()
}

// TestCompareJSON checks that -json output parses, follows the documented
// schema, that every row ran each round with exact totals on a real
// Redis, and that the headline divides the engine by the fastest
// alternative and by INCR per event.
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
	byID := map[string]Result{}
	for _, r := range rep.Results {
		byID[r.ID] = r
		if r.Error != "" || r.Skipped != "" {
			t.Errorf("%s: error %q, skipped %q", r.ID, r.Error, r.Skipped)
		}
		if len(r.Rounds) != 2 {
			t.Errorf("%s: %d rounds; want 2", r.ID, len(r.Rounds))
		}
		for i, rd := range r.Rounds {
			if rd.RedisCommands <= 0 || r.Group != "queue" && (rd.Ops <= 0 || rd.OpsPerSec <= 0) {
				t.Errorf("%s round %d: ops %d, ops/s %g, Redis commands %d; want all positive", r.ID, i+1, rd.Ops, rd.OpsPerSec, rd.RedisCommands)
			}
		}
		if s := r.OpsPerSec; s.Min > s.Median || s.Median > s.Max {
			t.Errorf("%s: ops/s spread %+v is not ordered", r.ID, s)
		}
		if r.Verified != nil && !*r.Verified {
			t.Errorf("%s: Redis total differs from what was added: %s", r.ID, r.Note)
		}
		if r.Ratio == nil {
			t.Errorf("%s: no ratio to %s on a real Redis", r.ID, r.Baseline)
		}
	}
	for _, id := range []string{"naive-incr-pool", "goredis-pipeline", "goredis-autopipeline", "rueidis-incr", "engine-exactly-once"} {
		if r := byID[id]; r.Verified == nil || !*r.Verified {
			t.Errorf("%s: total not checked exact (verified %v)", id, r.Verified)
		}
	}
	if st := byID["engine-exactly-once"].Staleness; st == nil || st.MaxMS.Median <= 0 {
		t.Errorf("engine-exactly-once: staleness %+v; want the engine's record", st)
	}
	if len(rep.Headline) != 2 || !byID[rep.Headline[0].Over].Peer || rep.Headline[1].Over != "naive-incr-pool" {
		t.Fatalf("headline %+v; want the engine over the fastest peer, then over naive-incr-pool", rep.Headline)
	}
	for _, r := range rep.Results {
		if r.Peer && r.OpsPerSec.Median > byID[rep.Headline[0].Over].OpsPerSec.Median {
			t.Errorf("headline divides by %s, but %s is faster", rep.Headline[0].Over, r.ID)
		}
	}
	// The documented field names, read without the Go types.
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	for _, k := range []string{"schema", "started", "redis", "host", "config", "results", "headline"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks top-level %q", k)
		}
	}
	row := raw["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "name", "group", "peer", "goroutines", "baseline", "ops_per_sec",
		"redis_commands_per_sec", "ops_per_command", "ratio", "verified", "rounds"} {
		if _, ok := row[k]; !ok {
			t.Errorf("JSON result lacks %q", k)
		}
	}
	round := row["rounds"].([]any)[0].(map[string]any)
	for _, k := range []string{"seconds", "ops", "ops_per_sec", "redis_commands", "verified"} {
		if _, ok := round[k]; !ok {
			t.Errorf("JSON round lacks %q", k)
		}
	}
}

// TestCompareTable checks the table a person reads on a real Redis: the
// headline and the staleness record, and nothing that reads as a verdict
// or points inside the project.
func TestCompareTable(t *testing.T) {
	rdb := redistest.Client(t)
	out, _ := runBench(t, append([]string{"-redis", "redis://" + rdb.Options().Addr, "-only", "counter"}, short...)...)
	for _, want := range []string{"over the fastest alternative (", "over one INCR per event (naive INCR, pool of 4)",
		"rueidis INCR (auto-pipelined)", "go-redis AutoPipeline INCR", "go-redis Pipeline, 10 INCR per round trip",
		"max staleness", "total exact"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"goal", "not met", "issue", "mismatch", "error:"} {
		if strings.Contains(strings.ToLower(out), strings.ToLower(bad)) {
			t.Errorf("table contains %q:\n%s", bad, out)
		}
	}
}

// TestCompareOnceRows checks the retry-safe add rows on a Redis of their
// own: each counts every distinct event once and says what an event cost
// Redis, and the tokens are gone afterwards with every other key.
func TestCompareOnceRows(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	out, _ := runBench(t, append([]string{"-redis", srv.URL(), "-only", "once"}, short...)...)
	for _, row := range []string{"naive SET NX, then INCRBY, per event", "script SET NX + INCRBY per event", "engine AddOnce"} {
		line := lineOf(out, row)
		if !strings.Contains(line, "total exact") || !strings.Contains(line, "Redis cmd/event") {
			t.Errorf("row %q: %q; want an exact total and Redis commands per event\n%s", row, line, out)
		}
	}
	if n, err := srv.Client(t).DBSize(context.Background()).Result(); err != nil || n != 0 {
		t.Errorf("%d keys left in Redis after the rows, %v; want none", n, err)
	}
}

// TestCompareFallback runs the table where there is no Redis to use or
// spawn: bench must fall back to a server in this process, label its
// figures as in-process ones, compare nothing, and still count exactly.
func TestCompareFallback(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no redis-server to spawn
	t.Setenv("REDIS_URL", "")
	out, stderr := runBench(t, append([]string{"-only", "counter"}, short...)...)
	if !strings.Contains(stderr, "IN-PROCESS miniredis") {
		t.Errorf("stderr does not name the in-process server:\n%s", stderr)
	}
	for _, want := range []string{"IN-PROCESS figures", "engine Counter.Inc, exactly-once", "engine Counter.Inc, at-least-once", "total exact",
		"naive INCR, pool of 4", "rueidis INCR (auto-pipelined)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"×", "over the fastest", "MISMATCH", "error:", "skipped"} {
		if strings.Contains(out, bad) {
			t.Errorf("table contains %q:\n%s", bad, out)
		}
	}
}

// TestCompareFallbackSkipsWhatItCannotRun: the rows miniredis cannot
// serve say so, and nothing fails.
func TestCompareFallbackSkipsWhatItCannotRun(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("REDIS_URL", "")
	out, _ := runBench(t, append([]string{"-only", "unique,once"}, short...)...)
	for _, row := range []string{"engine Unique.Add", "engine AddOnce"} {
		line := lineOf(out, row)
		if !strings.Contains(line, "skipped: needs a Redis server: miniredis") {
			t.Errorf("row %q: %q; want it skipped, naming miniredis' limit\n%s", row, line, out)
		}
	}
	for _, row := range []string{"naive PFADD per event", "naive SET NX, then INCRBY, per event"} {
		if line := lineOf(out, row); strings.Contains(line, "skipped") || strings.Contains(line, "error:") {
			t.Errorf("row %q: %q; want it run\n%s", row, line, out)
		}
	}
}

// lineOf returns the line of the table out that starts with row, or "".
func lineOf(out, row string) string {
	line := ""
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, row) {
			line = l
		}
	}
	return line
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
