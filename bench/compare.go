package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/bench/internal/redisinfo"
	"github.com/abacus-go/abacus/bench/internal/target"
)

// compareConfig holds the compare subcommand's flags.
type compareConfig struct {
	duration      time.Duration // per row
	concurrency   int
	pipeline      int
	keys          int
	flushInterval time.Duration
	only          []string // row ids; empty: all
	quiet         bool
}

// SchemaCompare identifies the JSON layout of a compare report; see doc.go.
const SchemaCompare = "abacus.bench.compare/v1"

// Report is the result of a comparison, as printed with -json.
type Report struct {
	Schema  string      `json:"schema"`
	Started time.Time   `json:"started"`
	Redis   RedisInfo   `json:"redis"`
	Host    HostInfo    `json:"host"`
	Config  ConfigInfo  `json:"config"`
	Results []Result    `json:"results"`
	Summary []RatioLine `json:"summary"`
}

// RedisInfo says which Redis the figures come from.
type RedisInfo struct {
	Kind    target.Kind `json:"kind"`
	Addr    string      `json:"addr"`
	Version string      `json:"version"`
	Lua     bool        `json:"lua"`
	Banner  string      `json:"banner"`
}

// HostInfo describes the machine and Go runtime.
type HostInfo struct {
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
}

// ConfigInfo echoes the flags that shape the figures.
type ConfigInfo struct {
	DurationSeconds float64 `json:"duration_seconds"`
	Concurrency     int     `json:"concurrency"`
	Pipeline        int     `json:"pipeline"`
	Keys            int     `json:"keys"`
	FlushIntervalMS float64 `json:"flush_interval_ms"`
}

// Result is one row.
type Result struct {
	ID                  string  `json:"id"`
	Name                string  `json:"name"`
	Group               string  `json:"group"`
	Goroutines          int     `json:"goroutines"`
	Seconds             float64 `json:"seconds"`
	Ops                 int64   `json:"ops"`
	OpsPerSec           float64 `json:"ops_per_sec"`
	RedisCommands       int64   `json:"redis_commands"`
	RedisCommandsPerSec float64 `json:"redis_commands_per_sec"`
	OpsPerCommand       float64 `json:"ops_per_command"`
	Baseline            string  `json:"baseline"`
	Ratio               float64 `json:"ratio"`
	Verified            *bool   `json:"verified"`
	Note                string  `json:"note,omitempty"`
	Skipped             string  `json:"skipped,omitempty"`
	Error               string  `json:"error,omitempty"`
}

// RatioLine is a headline ratio with the goal the issues set for it.
type RatioLine struct {
	Of     string  `json:"of"`
	Over   string  `json:"over"`
	Ratio  float64 `json:"ratio"`
	Goal   float64 `json:"goal"`
	Met    bool    `json:"met"`
	Source string  `json:"source"`
}

// compare measures every selected scenario on tg, one after another.
func compare(ctx context.Context, cfg compareConfig, tg *target.Target) (*Report, error) {
	rep := &Report{
		Schema:  SchemaCompare,
		Started: time.Now().UTC(),
		Redis:   RedisInfo{Kind: tg.Kind, Addr: tg.Addr, Version: tg.Version, Lua: tg.Lua, Banner: tg.String()},
		Host: HostInfo{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
			NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)},
		Config: ConfigInfo{DurationSeconds: cfg.duration.Seconds(), Concurrency: cfg.concurrency,
			Pipeline: cfg.pipeline, Keys: cfg.keys, FlushIntervalMS: float64(cfg.flushInterval) / 1e6},
	}
	var todo []scenario
	for _, s := range scenarios(cfg) {
		if len(cfg.only) == 0 || contains(cfg.only, s.id) || contains(cfg.only, s.group) {
			todo = append(todo, s)
		}
	}
	admin := tg.Client(1)
	defer admin.Close()
	var keys []string
	runID := token()[:8]
	defer cleanup(admin, &keys, "abacus-bench:"+runID+":*")
	prog := newProgress(os.Stderr, len(todo), cfg.duration, cfg.quiet)
	defer prog.done()
	for _, s := range todo {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		res := Result{ID: s.id, Name: s.name, Group: s.group, Goroutines: s.workers, Baseline: s.baseline}
		if s.needsLua && !tg.Lua {
			res.Skipped = "needs Lua scripts, which this Redis (the fake) does not run"
			rep.Results = append(rep.Results, res)
			continue
		}
		prog.start(s.name)
		r := &row{ctx: ctx, cfg: cfg, ns: "abacus-bench:" + runID + ":" + s.id + ":", prog: prog,
			lua: tg.Lua, open: tg.Client, keys: &keys}
		before, err := redisinfo.Read(ctx, admin)
		if err != nil {
			return rep, err
		}
		out, err := s.run(r)
		after, ierr := redisinfo.Read(ctx, admin)
		if err == nil {
			err = ierr
		}
		if err != nil {
			res.Error = err.Error()
			rep.Results = append(rep.Results, res)
			continue
		}
		cmds := after.Sub(before).Commands("info")
		sec := out.elapsed.Seconds()
		res.Seconds, res.Ops, res.OpsPerSec = sec, out.ops, float64(out.ops)/sec
		res.RedisCommands, res.RedisCommandsPerSec = cmds, float64(cmds)/sec
		if cmds > 0 {
			res.OpsPerCommand = float64(out.ops) / float64(cmds)
		}
		res.Verified, res.Note = out.verified, out.note
		rep.Results = append(rep.Results, res)
	}
	rep.ratios()
	return rep, nil
}

// ratios fills each row's ratio to its baseline and the headline lines.
func (rep *Report) ratios() {
	byID := map[string]*Result{}
	for i := range rep.Results {
		byID[rep.Results[i].ID] = &rep.Results[i]
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		if b := byID[r.Baseline]; b != nil && b.OpsPerSec > 0 && r.OpsPerSec > 0 {
			r.Ratio = r.OpsPerSec / b.OpsPerSec
		}
	}
	for _, h := range []struct {
		of     string
		goal   float64
		source string
	}{
		{"engine-exactly-once", 5000, "issue 7 (issue 2 asks ≥ 1,000×)"},
		{"engine-at-least-once", 5000, "issue 7 (issue 2 asks ≥ 1,000×)"},
	} {
		if r := byID[h.of]; r != nil && r.Ratio > 0 {
			rep.Summary = append(rep.Summary, RatioLine{Of: h.of, Over: r.Baseline, Ratio: r.Ratio,
				Goal: h.goal, Met: r.Ratio >= h.goal, Source: h.source})
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// cleanup deletes the keys the comparison wrote, then any others under
// pattern (queue processing lists, lease fences), so a shared Redis at
// -redis is left as it was.
func cleanup(rdb *redis.Client, keys *[]string, pattern string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if more, err := scanKeys(ctx, rdb, pattern); err == nil {
		*keys = append(*keys, more...)
	}
	for k := *keys; len(k) > 0; {
		n := min(len(k), 1000)
		if err := rdb.Del(ctx, k[:n]...).Err(); err != nil {
			fmt.Fprintf(os.Stderr, "note: could not delete benchmark keys: %v\n", err)
			return
		}
		k = k[n:]
	}
}

func scanKeys(ctx context.Context, rdb *redis.Client, pattern string) ([]string, error) {
	var out []string
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return out, err
		}
		out = append(out, keys...)
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}
