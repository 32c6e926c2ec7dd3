package tune

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redisinfo"
)

// Step is what one flush interval measured.
type Step struct {
	Interval time.Duration
	Seconds  float64 // measured
	// AddsPerSec is the achieved rate of adds (the target is Options.Rate).
	AddsPerSec float64
	// RedisCommandsPerSec and RedisBytesPerSec are the server's counts of
	// commands and request bytes, without the tuner's own GETs and INFO.
	RedisCommandsPerSec float64
	RedisBytesPerSec    float64
	// Staleness seen by reading Redis: the delay from an add to the value
	// being in Redis, over Samples probes, each within Resolution.
	StalenessP50, StalenessP99, StalenessMax time.Duration
	Samples                                  int
	Resolution                               time.Duration
	// CPU is the process's CPU use in cores (1.0 = one core busy).
	CPU float64
	// MaxFlushDuration is the longest flush the engine reported.
	MaxFlushDuration time.Duration
	// Bound is the staleness bound: the larger of StalenessMax and
	// Interval + MaxFlushDuration.
	Bound time.Duration
	// WorstLoss is the adds a crash (a kill without Close) can lose: those
	// of one Bound at AddsPerSec.
	WorstLoss float64
	// Exact reports that after Close every key in Redis held exactly what
	// was added to it.
	Exact bool
}

// Report is the result of a sweep.
type Report struct {
	Options Options // with defaults applied
	Steps   []Step
}

// Run sweeps opts.Intervals on rdb and returns what each measured. It
// stops at the first error (a step whose keys do not match is not an error:
// see Step.Exact).
func Run(ctx context.Context, rdb redis.UniversalClient, opts Options) (*Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		var b [4]byte
		rand.Read(b[:])
		opts.Namespace = "abacus-tune:" + hex.EncodeToString(b[:]) + ":"
	}
	rep := &Report{Options: opts}
	for i, iv := range opts.Intervals {
		fmt.Fprintf(opts.Progress, "[%d/%d] flush interval %v: measuring %v\n",
			i+1, len(opts.Intervals), iv, opts.stepDuration(iv))
		st, err := runStep(ctx, rdb, opts, iv, opts.Namespace+strconv.Itoa(i)+":")
		if err != nil {
			return rep, fmt.Errorf("interval %v: %w", iv, err)
		}
		rep.Steps = append(rep.Steps, st)
	}
	return rep, nil
}

func runStep(ctx context.Context, rdb redis.UniversalClient, opts Options, iv time.Duration, ns string) (Step, error) {
	e, err := engine.New(rdb, engine.Options{FlushInterval: iv, Namespace: ns,
		Delivery: opts.Delivery, RecordTTL: time.Minute})
	if err != nil {
		return Step{}, err
	}
	closed := false
	defer func() {
		if !closed {
			e.Close(context.Background())
		}
	}()
	ld := &load{counters: make([]*engine.Counter, opts.Keys)}
	keys := make([]string, 0, opts.Keys+opts.Probes)
	for k := range ld.counters {
		if ld.counters[k], err = e.Counter("k" + strconv.Itoa(k)); err != nil {
			return Step{}, err
		}
		keys = append(keys, e.Key("k"+strconv.Itoa(k)))
	}
	defer deleteKeys(rdb, &keys)
	var probeBytes atomic.Int64
	probes := make([]*probe, opts.Probes)
	for i := range probes {
		name := "probe" + strconv.Itoa(i)
		c, err := e.Counter(name)
		if err != nil {
			return Step{}, err
		}
		probes[i] = &probe{rdb: rdb, c: c, key: e.Key(name), poll: pollPeriod(iv), sent: &probeBytes}
		keys = append(keys, e.Key(name))
	}

	before, err := redisinfo.Read(ctx, rdb)
	if err != nil {
		return Step{}, err
	}
	cpu0, t0 := cpuTime(), time.Now()
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() { ld.run(opts.Goroutines, opts.Rate, opts.Skew, stop); close(loadDone) }()
	timer := time.AfterFunc(opts.stepDuration(iv), func() { close(stop) })
	defer timer.Stop()
	samples, perr := runProbes(ctx, probes, iv, stop)
	if perr != nil {
		timer.Stop()
		select {
		case <-stop:
		default:
			close(stop)
		}
	}
	<-loadDone
	elapsed := time.Since(t0)
	cpu := cpuTime() - cpu0
	after, err := redisinfo.Read(ctx, rdb)
	if perr != nil || err != nil {
		return Step{}, fmt.Errorf("probe: %w", errors.Join(perr, err))
	}
	stats := e.Stats() // before Close: the final flush is not steady state
	closed = true
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := e.Close(cctx); err != nil {
		return Step{}, fmt.Errorf("Close: %w", err)
	}

	d := after.Sub(before)
	ownBytes := probeBytes.Load() + redisinfo.RequestBytes("info", "stats", "commandstats")
	sec := elapsed.Seconds()
	st := Step{
		Interval:            iv,
		Seconds:             sec,
		AddsPerSec:          float64(ld.total.Load()) / sec,
		RedisCommandsPerSec: float64(d.Commands("info", "get")) / sec,
		RedisBytesPerSec:    float64(max(d.NetInput-ownBytes, 0)) / sec,
		StalenessP50:        quantile(samples, 0.50),
		StalenessP99:        quantile(samples, 0.99),
		StalenessMax:        quantile(samples, 1),
		Samples:             len(samples),
		Resolution:          pollPeriod(iv),
		CPU:                 cpu.Seconds() / sec,
		MaxFlushDuration:    stats.MaxFlushDuration,
	}
	st.Bound = max(st.StalenessMax, iv+st.MaxFlushDuration)
	st.WorstLoss = st.AddsPerSec * st.Bound.Seconds()
	st.Exact, err = exact(ctx, rdb, keys[:opts.Keys], ld.want())
	return st, err
}

// exact reports whether each key holds its wanted total.
func exact(ctx context.Context, rdb redis.UniversalClient, keys []string, want []int64) (bool, error) {
	for i := 0; i < len(keys); i += 1000 {
		j := min(i+1000, len(keys))
		vals, err := rdb.MGet(ctx, keys[i:j]...).Result()
		if err != nil {
			return false, err
		}
		for k, v := range vals {
			var got int64
			if s, ok := v.(string); ok {
				got, _ = strconv.ParseInt(s, 10, 64)
			}
			if got != want[i+k] {
				return false, nil
			}
		}
	}
	return true, nil
}

func deleteKeys(rdb redis.UniversalClient, keys *[]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for k := *keys; len(k) > 0; k = k[min(len(k), 1000):] {
		// One key per DEL keeps this valid on Redis Cluster too.
		p := rdb.Pipeline()
		for _, key := range k[:min(len(k), 1000)] {
			p.Del(ctx, key)
		}
		p.Exec(ctx)
	}
}
