package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/bench/internal/target"
	"github.com/abacus-go/abacus/internal/redisinfo"
)

// compareConfig holds the compare subcommand's flags.
type compareConfig struct {
	duration      time.Duration // per row and round
	rounds        int
	concurrency   int
	pipeline      int
	keys          int
	flushInterval time.Duration
	only          []string // row ids; empty: all
	quiet         bool
}

// SchemaCompare identifies the JSON layout of a compare report; see doc.go.
const SchemaCompare = "abacus.bench.compare/v2"

// Report is the result of a comparison, as printed with -json.
type Report struct {
	Schema  string     `json:"schema"`
	Started time.Time  `json:"started"`
	Redis   RedisInfo  `json:"redis"`
	Host    HostInfo   `json:"host"`
	Config  ConfigInfo `json:"config"`
	Results []Result   `json:"results"`
	// Headline divides the engine by the fastest alternative and by one
	// INCR per event; empty on an in-process server.
	Headline []RatioLine `json:"headline"`
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
	Rounds          int     `json:"rounds"`
	Concurrency     int     `json:"concurrency"`
	Pipeline        int     `json:"pipeline"`
	Keys            int     `json:"keys"`
	FlushIntervalMS float64 `json:"flush_interval_ms"`
}

// Result is one row: its rounds and their medians.
type Result struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Group      string `json:"group"`
	Peer       bool   `json:"peer"` // what a user would pick instead of abacus
	Goroutines int    `json:"goroutines"`
	Baseline   string `json:"baseline"`
	// The figures below are medians over the rounds that ran without
	// error, with their range.
	OpsPerSec           Spread  `json:"ops_per_sec"`
	RedisCommandsPerSec Spread  `json:"redis_commands_per_sec"`
	OpsPerCommand       float64 `json:"ops_per_command"` // 0 when no command was seen
	// Ratio is ops/s over the baseline's in the same round; null on the
	// in-process server or when unknown.
	Ratio *Spread `json:"ratio"`
	// Staleness is the engine's record of its flushing (engine rows only).
	Staleness *Staleness `json:"staleness,omitempty"`
	Verified  *bool      `json:"verified"` // every round's Redis total was exact; null when not checked
	Note      string     `json:"note,omitempty"`
	Skipped   string     `json:"skipped,omitempty"`
	Error     string     `json:"error,omitempty"`
	Rounds    []Round    `json:"rounds"`
}

// Round is one measurement of a row.
type Round struct {
	Seconds       float64 `json:"seconds"`
	Ops           int64   `json:"ops"`
	OpsPerSec     float64 `json:"ops_per_sec"`
	RedisCommands int64   `json:"redis_commands"`
	Verified      *bool   `json:"verified"`
	Note          string  `json:"note,omitempty"`
	Error         string  `json:"error,omitempty"`
	// MaxStalenessMS and Flushes are an engine row's Stats: the observed
	// staleness bound and the background flushes completed while adding.
	MaxStalenessMS float64 `json:"max_staleness_ms,omitempty"`
	Flushes        uint64  `json:"flushes,omitempty"`
}

// Staleness summarizes an engine row's rounds: the longest time from the
// flush a delta just missed to Redis confirming it (Stats.MaxStaleness,
// the flusher's own clock), and how many background flushes completed
// while the goroutines were adding, against how many the interval asks.
type Staleness struct {
	MaxMS   Spread  `json:"max_ms"`
	Flushes Spread  `json:"flushes"`
	Due     float64 `json:"due"` // measured seconds / flush interval, median
}

// RatioLine is a headline: one row's ops/s over another's, per round.
type RatioLine struct {
	Of    string `json:"of"`
	Over  string `json:"over"`
	Ratio Spread `json:"ratio"`
}

// compare measures every selected scenario on tg in cfg.rounds
// interleaved rounds: each round runs every row once, so that a slow
// moment of a shared machine does not fall on one row alone.
func compare(ctx context.Context, cfg compareConfig, tg *target.Target) (*Report, error) {
	rep := &Report{
		Schema:  SchemaCompare,
		Started: time.Now().UTC(),
		Redis:   RedisInfo{Kind: tg.Kind, Addr: tg.Addr, Version: tg.Version, Lua: tg.Lua, Banner: tg.String()},
		Host: HostInfo{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
			NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)},
		Config: ConfigInfo{DurationSeconds: cfg.duration.Seconds(), Rounds: cfg.rounds, Concurrency: cfg.concurrency,
			Pipeline: cfg.pipeline, Keys: cfg.keys, FlushIntervalMS: float64(cfg.flushInterval) / 1e6},
	}
	var todo []scenario
	for _, s := range scenarios(cfg) {
		if len(cfg.only) == 0 || contains(cfg.only, s.id) || contains(cfg.only, s.group) {
			todo = append(todo, s)
		}
	}
	runs := 0
	for _, s := range todo {
		res := Result{ID: s.id, Name: s.name, Group: s.group, Peer: s.peer, Goroutines: s.workers, Baseline: s.baseline}
		switch {
		case s.needsLua && !tg.Lua:
			res.Skipped = "needs Lua scripts, which this Redis does not run"
		case s.notInProcess != "" && tg.Kind == target.InProcess:
			res.Skipped = "needs a Redis server: " + s.notInProcess
		default:
			runs += cfg.rounds
		}
		rep.Results = append(rep.Results, res)
	}
	admin := tg.Client(1)
	defer admin.Close()
	var keys []string
	runID := token()[:8]
	defer cleanup(admin, &keys, "abacus-bench:"+runID+":*")
	prog := newProgress(os.Stderr, runs, cfg.duration, cfg.quiet)
	defer prog.done()
	for round := 1; round <= cfg.rounds; round++ {
		for i, s := range todo {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			res := &rep.Results[i]
			if res.Skipped != "" {
				continue
			}
			prog.start(fmt.Sprintf("round %d/%d: %s", round, cfg.rounds, s.name))
			ns := fmt.Sprintf("abacus-bench:%s:%s:%d:", runID, s.id, round)
			r := &row{ctx: ctx, cfg: cfg, ns: ns, prog: prog, lua: tg.Lua, open: tg.Client, keys: &keys}
			rd, err := measure(r, s, admin)
			if err != nil && ctx.Err() != nil {
				return rep, ctx.Err()
			}
			res.Rounds = append(res.Rounds, rd)
			// Every round writes its own keys: drop the row's before the
			// next, so that the keyspace does not grow with the rounds (an
			// in-process server's commands slow down with it). Keys put in
			// a chosen hash slot by a "{tag}" before the namespace (the
			// tokens of retry-safe adds) are found by a scan.
			if tagged, err := scanKeys(ctx, admin, "{*}"+ns+"*"); err == nil {
				keys = append(keys, tagged...)
			}
			deleteKeys(ctx, admin, &keys)
		}
	}
	rep.summarize(remote(tg.Kind))
	return rep, nil
}

// remote reports whether a target of kind k is a Redis server of its own,
// whose round trips leave this process; only its figures are compared.
func remote(k target.Kind) bool { return k == target.URL || k == target.Spawned }

// measure runs s once and adds the server's command count.
func measure(r *row, s scenario, admin *redis.Client) (Round, error) {
	before, err := redisinfo.Read(r.ctx, admin)
	if err != nil {
		return Round{Error: err.Error()}, err
	}
	out, err := s.run(r)
	after, ierr := redisinfo.Read(r.ctx, admin)
	if err == nil {
		err = ierr
	}
	if err != nil {
		return Round{Error: err.Error()}, err
	}
	sec := out.elapsed.Seconds()
	return Round{Seconds: sec, Ops: out.ops, OpsPerSec: float64(out.ops) / sec,
		RedisCommands: after.Sub(before).Commands("info"), Verified: out.verified, Note: out.note,
		MaxStalenessMS: float64(out.staleness) / 1e6, Flushes: out.flushes}, nil
}

// summarize reduces each row's rounds to medians and spreads, and, when
// the figures may be compared (a real Redis), fills the ratios and the
// headline.
func (rep *Report) summarize(comparable bool) {
	byID := map[string]*Result{}
	for i := range rep.Results {
		r := &rep.Results[i]
		byID[r.ID] = r
		r.reduce(rep.Config)
	}
	if !comparable {
		return
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		if b := byID[r.Baseline]; b != nil {
			r.Ratio = perRound(r, b)
		}
	}
	engine, naive := byID["engine-exactly-once"], byID["naive-incr-pool"]
	var fastest *Result
	for i := range rep.Results {
		p := &rep.Results[i]
		if p.Peer && len(p.Rounds) > 0 && p.Error == "" && (fastest == nil || p.OpsPerSec.Median > fastest.OpsPerSec.Median) {
			fastest = p
		}
	}
	for _, over := range []*Result{fastest, naive} {
		if engine == nil || over == nil {
			continue
		}
		if ratio := perRound(engine, over); ratio != nil {
			rep.Headline = append(rep.Headline, RatioLine{Of: engine.ID, Over: over.ID, Ratio: *ratio})
		}
	}
}

// reduce fills r's medians, spreads and verdict from its rounds.
func (r *Result) reduce(cfg ConfigInfo) {
	var ops, cmds, perCmd, stale, flushes, due []float64
	verified := true
	checked := false
	for _, rd := range r.Rounds {
		if rd.Error != "" {
			if r.Error == "" {
				r.Error = rd.Error
			}
			continue
		}
		ops = append(ops, rd.OpsPerSec)
		cmds = append(cmds, float64(rd.RedisCommands)/rd.Seconds)
		if rd.RedisCommands > 0 {
			perCmd = append(perCmd, float64(rd.Ops)/float64(rd.RedisCommands))
		}
		if rd.Verified != nil {
			checked = true
			if !*rd.Verified {
				verified = false
				r.Note = rd.Note // the mismatch
			}
		}
		if rd.MaxStalenessMS > 0 {
			stale = append(stale, rd.MaxStalenessMS)
			flushes = append(flushes, float64(rd.Flushes))
			due = append(due, rd.Seconds*1e3/cfg.FlushIntervalMS)
		}
	}
	r.OpsPerSec, r.RedisCommandsPerSec = spread(ops), spread(cmds)
	r.OpsPerCommand = spread(perCmd).Median
	if checked {
		r.Verified = &verified
	}
	if verified && len(ops) > 0 {
		r.Note = r.Rounds[medianIndex(r.Rounds)].Note
	}
	if len(stale) > 0 {
		r.Staleness = &Staleness{MaxMS: spread(stale), Flushes: spread(flushes), Due: spread(due).Median}
	}
}

// perRound returns r's ops/s over b's, round by round (the rounds ran
// side by side), or nil when a round of either lacks a figure.
func perRound(r, b *Result) *Spread {
	if len(r.Rounds) == 0 || len(r.Rounds) != len(b.Rounds) {
		return nil
	}
	ratios := make([]float64, len(r.Rounds))
	for i := range r.Rounds {
		x, y := r.Rounds[i].OpsPerSec, b.Rounds[i].OpsPerSec
		if x <= 0 || y <= 0 || r.Rounds[i].Error != "" || b.Rounds[i].Error != "" {
			return nil
		}
		ratios[i] = x / y
	}
	s := spread(ratios)
	return &s
}

// medianIndex returns the index of the round with the median ops/s
// among those without error.
func medianIndex(rounds []Round) int {
	var idx []int
	for i, rd := range rounds {
		if rd.Error == "" {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(rounds[a].OpsPerSec, rounds[b].OpsPerSec) })
	return idx[(len(idx)-1)/2]
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
	deleteKeys(ctx, rdb, keys)
}

// deleteKeys deletes keys and empties the list.
func deleteKeys(ctx context.Context, rdb *redis.Client, keys *[]string) {
	for k := *keys; len(k) > 0; {
		n := min(len(k), 1000)
		if err := rdb.Del(ctx, k[:n]...).Err(); err != nil {
			fmt.Fprintf(os.Stderr, "note: could not delete benchmark keys: %v\n", err)
			return
		}
		k = k[n:]
	}
	*keys = (*keys)[:0]
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
