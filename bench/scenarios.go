package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/lease"
	"github.com/abacus-go/abacus/serial"
)

// scenario is one row of the comparison.
type scenario struct {
	id, name string
	group    string // counter, serial, lease, unique, once, queue
	baseline string // id of the row this one's ratio is against
	workers  int    // goroutines
	needsLua bool
	// notInProcess, when set, says why the row cannot run on the
	// in-process miniredis, which runs every abacus script but is not
	// Redis everywhere.
	notInProcess string
	peer         bool // what a user would pick instead of abacus
	run          func(r *row) (outcome, error)
}

// outcome is what a scenario measured; the runner adds Redis' side.
type outcome struct {
	ops      int64
	elapsed  time.Duration // the measured phase (for the engine: adding, not Close)
	verified *bool         // the Redis total matched what was added (nil: not checked)
	note     string
	// An engine's Stats.MaxStaleness after Close, and its background
	// flushes completed before Close.
	staleness time.Duration
	flushes   uint64
}

// row is the context one scenario runs in.
type row struct {
	ctx  context.Context
	cfg  compareConfig
	ns   string // key prefix of this scenario
	prog *progress
	lua  bool // the server runs scripts
	open func(poolSize int) *redis.Client
	keys *[]string // keys to delete once the row has run
}

func (r *row) hammer(n int, op func(g int) (int64, error)) (int64, time.Duration, error) {
	return hammer(n, r.cfg.duration, r.prog.tick, op)
}

// checkTotal reads key and reports whether it holds want.
func (r *row) checkTotal(rdb redis.UniversalClient, key string, want int64) (*bool, string, error) {
	got, err := rdb.Get(r.ctx, key).Int64()
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", key, err)
	}
	ok := got == want
	if !ok {
		return &ok, fmt.Sprintf("Redis has %d, added %d", got, want), nil
	}
	return &ok, "", nil
}

func scenarios(cfg compareConfig) []scenario {
	n := cfg.concurrency
	list := []scenario{
		{id: "naive-incr-1", name: "naive INCR, 1 connection", group: "counter", baseline: "naive-incr-pool", workers: 1,
			run: func(r *row) (outcome, error) { return naiveINCR(r, 1) }},
		{id: "naive-incr-pool", name: fmt.Sprintf("naive INCR, pool of %d", n), group: "counter", baseline: "naive-incr-pool", workers: n,
			run: func(r *row) (outcome, error) { return naiveINCR(r, n) }},
	}
	list = append(list, peerScenarios(cfg)...)
	list = append(list, []scenario{
		{id: "engine-exactly-once", name: "engine Counter.Inc, exactly-once", group: "counter", baseline: "naive-incr-pool", workers: n, needsLua: true,
			run: func(r *row) (outcome, error) { return engineInc(r, n, flush.ExactlyOnce) }},
		{id: "engine-at-least-once", name: "engine Counter.Inc, at-least-once", group: "counter", baseline: "naive-incr-pool", workers: n,
			run: func(r *row) (outcome, error) { return engineInc(r, n, flush.AtLeastOnce) }},
		{id: "engine-add-names", name: fmt.Sprintf("engine Add(name), %d keys", cfg.keys), group: "counter", baseline: "naive-incr-pool", workers: n,
			run: func(r *row) (outcome, error) { return engineAddNames(r, n) }},
		{id: "serial-next", name: "serial Allocator.Next (one ID)", group: "serial", baseline: "naive-incr-pool", workers: n,
			run: func(r *row) (outcome, error) { return serialNext(r, n, false) }},
		{id: "serial-next-unordered", name: "serial Allocator.Next, Unordered", group: "serial", baseline: "naive-incr-pool", workers: n,
			run: func(r *row) (outcome, error) { return serialNext(r, n, true) }},
		{id: "raw-setnx-del", name: "raw SET NX PX + DEL (unsafe lock)", group: "lease", baseline: "raw-setnx-del", workers: n,
			run: func(r *row) (outcome, error) { return rawSetNX(r, n) }},
		{id: "lease-acquire-release", name: "lease TryAcquire + Release", group: "lease", baseline: "raw-setnx-del", workers: n, needsLua: true,
			run: func(r *row) (outcome, error) { return leaseCycle(r, n) }},
	}...)
	list = append(list, uniqueScenarios(n)...)
	list = append(list, onceScenarios(n)...)
	return append(list, queueScenarios(n)...)
}

// naiveINCR sends one INCR round trip per increment from n goroutines
// sharing a pool of n connections.
func naiveINCR(r *row, n int) (outcome, error) {
	rdb := r.open(n)
	defer rdb.Close()
	key := r.ns + "naive"
	*r.keys = append(*r.keys, key)
	ops, el, err := r.hammer(n, func(int) (int64, error) {
		return 1, rdb.Incr(r.ctx, key).Err()
	})
	if err != nil {
		return outcome{}, err
	}
	v, note, err := r.checkTotal(rdb, key, ops)
	return outcome{ops: ops, elapsed: el, verified: v, note: note}, err
}

// closeEngine closes e, confirming every increment reached Redis, and
// puts e's record of its flushing into o: the background flushes that
// completed while the goroutines were adding, and the staleness bound the
// flusher observed, Close's final flush included.
func (r *row) closeEngine(e *engine.Engine, o *outcome) error {
	o.flushes = e.Stats().Flushes
	r.prog.note("Close (final flush)")
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		return fmt.Errorf("Close: %w", err)
	}
	o.staleness = e.Stats().MaxStaleness
	return nil
}

// engineInc increments one hot counter (a page-view counter) from n
// goroutines through held handles, then closes the engine so that every
// increment is confirmed in Redis, and checks the total.
func engineInc(r *row, n int, mode flush.Mode) (outcome, error) {
	rdb := r.open(0)
	defer rdb.Close()
	e, err := engine.New(rdb, engine.Options{Namespace: r.ns, Delivery: mode,
		FlushInterval: r.cfg.flushInterval, RecordTTL: time.Minute})
	if err != nil {
		return outcome{}, err
	}
	c, err := e.Counter("pv:/home")
	if err != nil {
		return outcome{}, err
	}
	*r.keys = append(*r.keys, e.Key("pv:/home"))
	const batch = 1024 // check the clock rarely: Inc costs nanoseconds
	ops, el, _ := r.hammer(n, func(int) (int64, error) {
		for range batch {
			c.Inc()
		}
		return batch, nil
	})
	o := outcome{ops: ops, elapsed: el}
	if err := r.closeEngine(e, &o); err != nil {
		return outcome{}, err
	}
	o.verified, o.note, err = r.checkTotal(rdb, e.Key("pv:/home"), ops)
	return o, err
}

// engineAddNames looks counters up by name on every Add, over cfg.keys
// names, each goroutine walking them from its own offset.
func engineAddNames(r *row, n int) (outcome, error) {
	rdb := r.open(0)
	defer rdb.Close()
	mode := flush.ExactlyOnce
	if !r.lua {
		mode = flush.AtLeastOnce // the fake has no Lua
	}
	e, err := engine.New(rdb, engine.Options{Namespace: r.ns, Delivery: mode,
		FlushInterval: r.cfg.flushInterval, RecordTTL: time.Minute})
	if err != nil {
		return outcome{}, err
	}
	names := make([]string, r.cfg.keys)
	for i := range names {
		names[i] = "pv:/page/" + strconv.Itoa(i)
		*r.keys = append(*r.keys, e.Key(names[i]))
	}
	const batch = 256
	ops, el, err := r.hammer(n, func(g int) (int64, error) {
		i := g * 7919
		for range batch {
			if err := e.Add(names[i%len(names)], 1); err != nil {
				return 0, err
			}
			i++
		}
		return batch, nil
	})
	if err != nil {
		return outcome{}, err
	}
	o := outcome{ops: ops, elapsed: el, note: mode.String()}
	if err := r.closeEngine(e, &o); err != nil {
		return outcome{}, err
	}
	var sum int64
	for i := 0; i < len(names); i += 1000 {
		keys := make([]string, 0, 1000)
		for _, name := range names[i:min(i+1000, len(names))] {
			keys = append(keys, e.Key(name))
		}
		vals, err := rdb.MGet(r.ctx, keys...).Result()
		if err != nil {
			return outcome{}, err
		}
		for _, v := range vals {
			if s, ok := v.(string); ok {
				k, _ := strconv.ParseInt(s, 10, 64)
				sum += k
			}
		}
	}
	ok := sum == ops
	o.verified = &ok
	if !ok {
		o.note = fmt.Sprintf("Redis has %d, added %d; %s", sum, ops, o.note)
	}
	return o, nil
}

// serialNext takes IDs one at a time from one shared Allocator; compare
// with naive INCR per ID (the pool row).
func serialNext(r *row, n int, unordered bool) (outcome, error) {
	rdb := r.open(0)
	defer rdb.Close()
	key := r.ns + "orders"
	*r.keys = append(*r.keys, key)
	a, err := serial.New(rdb, key, serial.Options{Unordered: unordered})
	if err != nil {
		return outcome{}, err
	}
	defer a.Close(context.Background())
	const batch = 256
	ops, el, err := r.hammer(n, func(int) (int64, error) {
		for i := range batch {
			if _, err := a.Next(r.ctx); err != nil {
				return int64(i), err
			}
		}
		return batch, nil
	})
	if err != nil {
		return outcome{}, err
	}
	st := a.Stats()
	ok := st.Issued == ops
	return outcome{ops: ops, elapsed: el, verified: &ok,
		note: fmt.Sprintf("%d blocks, last size %d", st.Blocks, st.BlockSize)}, nil
}

func token() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rawSetNX takes and drops a lock with SET NX PX and DEL: two round trips
// and none of a lease's safety (DEL may delete another owner's lock).
func rawSetNX(r *row, n int) (outcome, error) {
	rdb := r.open(n)
	defer rdb.Close()
	ops, el, err := r.hammer(n, func(g int) (int64, error) {
		key := r.ns + "lock:" + strconv.Itoa(g)
		ok, err := rdb.SetNX(r.ctx, key, token(), 10*time.Second).Result()
		if err != nil || !ok {
			return 0, fmt.Errorf("SET NX %s = %v, %v", key, ok, err)
		}
		return 1, rdb.Del(r.ctx, key).Err()
	})
	return outcome{ops: ops, elapsed: el}, err
}

// leaseCycle takes and releases a lease per operation, one name per
// goroutine (no contention: this is the cost of safety, not of waiting).
func leaseCycle(r *row, n int) (outcome, error) {
	rdb := r.open(n)
	defer rdb.Close()
	opts := lease.Options{KeyPrefix: r.ns + "lease:"}
	for g := range n {
		key, fence := lease.Keys(opts.KeyPrefix, "job-"+strconv.Itoa(g))
		*r.keys = append(*r.keys, key, fence)
	}
	ops, el, err := r.hammer(n, func(g int) (int64, error) {
		l, err := lease.TryAcquire(r.ctx, rdb, "job-"+strconv.Itoa(g), 10*time.Second, opts)
		if err != nil {
			return 0, err
		}
		return 1, l.Release(r.ctx)
	})
	return outcome{ops: ops, elapsed: el}, err
}
