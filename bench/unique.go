package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/abacus-go/abacus/engine"
)

// uniqueScenarios compare counting distinct members (unique visitors)
// with the engine against one PFADD per event; one operation is one
// member added, every member distinct.
func uniqueScenarios(n int) []scenario {
	return []scenario{
		{id: "naive-pfadd", name: "naive PFADD per event", group: "unique", baseline: "naive-pfadd", workers: n,
			run: func(r *row) (outcome, error) { return naivePFADD(r, n) }},
		{id: "engine-unique", name: "engine Unique.Add", group: "unique", baseline: "naive-pfadd", workers: n, needsLua: true,
			notInProcess: "miniredis keeps HyperLogLogs in a format of its own, so its PFCOUNT cannot read the registers the engine merges",
			run:          func(r *row) (outcome, error) { return engineUnique(r, n) }},
	}
}

// members hands each goroutine its own distinct members: goroutine g's
// i-th is the 8 bytes of g<<40 | i.
type members [][8]byte

func (m members) next(g int, i int64) []byte {
	binary.LittleEndian.PutUint64(m[g][:], uint64(g)<<40|uint64(i))
	return m[g][:]
}

func naivePFADD(r *row, n int) (outcome, error) {
	rdb := r.open(n)
	defer rdb.Close()
	key := r.ns + "uv"
	*r.keys = append(*r.keys, key)
	m, seq := make(members, n), make([]int64, n)
	ops, el, err := r.hammer(n, func(g int) (int64, error) {
		seq[g]++
		return 1, rdb.PFAdd(r.ctx, key, m.next(g, seq[g])).Err()
	})
	if err != nil {
		return outcome{}, err
	}
	return r.checkUnique(key, ops, el)
}

func engineUnique(r *row, n int) (outcome, error) {
	rdb := r.open(0)
	defer rdb.Close()
	e, err := engine.New(rdb, engine.Options{Namespace: r.ns, FlushInterval: r.cfg.flushInterval})
	if err != nil {
		return outcome{}, err
	}
	uv, err := e.Unique("uv")
	if err != nil {
		return outcome{}, err
	}
	*r.keys = append(*r.keys, r.ns+"uv")
	m, seq := make(members, n), make([]int64, n)
	const batch = 256
	ops, el, err := r.hammer(n, func(g int) (int64, error) {
		for range batch {
			seq[g]++
			uv.AddBytes(m.next(g, seq[g]))
		}
		return batch, nil
	})
	if err != nil {
		return outcome{}, err
	}
	r.prog.note("Close (final flush)")
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		return outcome{}, fmt.Errorf("Close: %w", err)
	}
	return r.checkUnique(r.ns+"uv", ops, el)
}

// checkUnique compares key's PFCOUNT with the ops distinct members added:
// HyperLogLog's standard error is 0.81 %, so a count more than 3 of them
// (2.43 %) away is a failure.
func (r *row) checkUnique(key string, ops int64, el time.Duration) (outcome, error) {
	rdb := r.open(1)
	defer rdb.Close()
	got, err := rdb.PFCount(r.ctx, key).Result()
	if err != nil {
		return outcome{}, fmt.Errorf("PFCOUNT %s: %w", key, err)
	}
	off := float64(got-ops) / float64(max(ops, 1))
	ok := math.Abs(off) <= 0.0243
	note := fmt.Sprintf("PFCOUNT %+.2f%% off", 100*off)
	return outcome{ops: ops, elapsed: el, verified: &ok, note: note}, nil
}
