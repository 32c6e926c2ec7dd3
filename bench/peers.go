package main

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// peerScenarios are what a user would pick instead of abacus to count
// events on Redis, each from n goroutines like the engine rows, one INCR
// per event, and each counted only once Redis has answered: go-redis
// pipelines, go-redis' automatic pipelining and rueidis' automatic
// pipelining. The headline divides the engine by the fastest of them.
func peerScenarios(cfg compareConfig) []scenario {
	n := cfg.concurrency
	return []scenario{
		{id: "goredis-pipeline", name: fmt.Sprintf("go-redis Pipeline, %d INCR per round trip", cfg.pipeline),
			group: "counter", baseline: "naive-incr-pool", workers: n, peer: true,
			run: func(r *row) (outcome, error) { return goredisPipeline(r, n) }},
		{id: "goredis-autopipeline", name: "go-redis AutoPipeline INCR",
			group: "counter", baseline: "naive-incr-pool", workers: n, peer: true,
			run: func(r *row) (outcome, error) { return goredisAutoPipeline(r, n) }},
		{id: "rueidis-incr", name: "rueidis INCR (auto-pipelined)",
			group: "counter", baseline: "naive-incr-pool", workers: n, peer: true,
			run: func(r *row) (outcome, error) { return rueidisINCR(r, n) }},
	}
}

// incrRow runs op from n goroutines against one fresh key and checks that
// Redis counted every INCR op reported as answered.
func (r *row) incrRow(rdb *redis.Client, n int, name string, op func(key string) (int64, error)) (outcome, error) {
	key := r.ns + name
	*r.keys = append(*r.keys, key)
	ops, el, err := r.hammer(n, func(int) (int64, error) { return op(key) })
	if err != nil {
		return outcome{}, err
	}
	v, note, err := r.checkTotal(rdb, key, ops)
	return outcome{ops: ops, elapsed: el, verified: v, note: note}, err
}

// goredisPipeline sends cfg.pipeline INCRs per round trip from each of n
// goroutines, with a connection for each.
func goredisPipeline(r *row, n int) (outcome, error) {
	rdb := r.open(n)
	defer rdb.Close()
	size := r.cfg.pipeline
	return r.incrRow(rdb, n, "goredis-pipeline", func(key string) (int64, error) {
		p := rdb.Pipeline()
		for range size {
			p.Incr(r.ctx, key)
		}
		_, err := p.Exec(r.ctx)
		return int64(size), err
	})
}

// goredisAutoPipeline calls INCR on go-redis' blocking AutoPipeliner from
// n goroutines: each call returns once executed, and the pipeliner batches
// concurrent callers into one pipeline. Its default options
// (DefaultBlockingAutoPipelineOptions: one ordered batch stream) were the
// fastest of those tried here (parallel batches, flush delays, full
// duplex), as go-redis' documentation says they should be.
func goredisAutoPipeline(r *row, n int) (outcome, error) {
	rdb := r.open(0)
	defer rdb.Close()
	ap, err := rdb.AutoPipeline()
	if err != nil {
		return outcome{}, fmt.Errorf("AutoPipeline: %w", err)
	}
	defer ap.Close()
	return r.incrRow(rdb, n, "goredis-autopipeline", func(key string) (int64, error) {
		return 1, ap.Incr(r.ctx, key).Err()
	})
}

// rueidisINCR calls INCR through rueidis from n goroutines; rueidis
// pipelines concurrent commands on shared connections by itself. On two
// cores one connection with a 20 µs flush delay was the fastest
// configuration tried, about 1.5–3× rueidis' defaults (log2(GOMAXPROCS)
// connections, no delay), so the row gives rueidis that.
func rueidisINCR(r *row, n int) (outcome, error) {
	rdb := r.open(1) // for the final check; its options name the server
	defer rdb.Close()
	o := rdb.Options()
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{o.Addr},
		Username:          o.Username,
		Password:          o.Password,
		SelectDB:          o.DB,
		TLSConfig:         o.TLSConfig,
		ForceSingleClient: true,
		PipelineMultiplex: -1, // 2^0 = 1 connection
		MaxFlushDelay:     20 * time.Microsecond,
		// INCR is not cacheable; without client-side caching rueidis
		// also speaks RESP2 to servers without HELLO.
		DisableCache: true,
	})
	if err != nil {
		return outcome{}, fmt.Errorf("rueidis: %w", err)
	}
	defer c.Close()
	return r.incrRow(rdb, n, "rueidis", func(key string) (int64, error) {
		return 1, c.Do(r.ctx, c.B().Incr().Key(key).Build()).Error()
	})
}
