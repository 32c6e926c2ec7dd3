package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
)

// onceScenarios compare retry-safe adds (billed usage, each event under
// an idempotency token) through the engine with what a user would write
// instead: SET NX then INCRBY per event, or both in one script per event.
// One operation is one event; one in eight is a retry of the event
// before it, with the same token, which must not count.
func onceScenarios(n int) []scenario {
	return []scenario{
		{id: "naive-setnx-incrby", name: "naive SET NX, then INCRBY, per event", group: "once", baseline: "naive-setnx-incrby", workers: n,
			run: func(r *row) (outcome, error) { return naiveSetNXIncrBy(r, n) }},
		{id: "script-setnx-incrby", name: "script SET NX + INCRBY per event", group: "once", baseline: "naive-setnx-incrby", workers: n, needsLua: true,
			run: func(r *row) (outcome, error) { return scriptSetNXIncrBy(r, n) }},
		{id: "engine-addonce", name: "engine AddOnce (tokens in the flush)", group: "once", baseline: "naive-setnx-incrby", workers: n, needsLua: true,
			notInProcess: "miniredis runs scripts tens of times slower than Redis, too slow to write a round's tokens before Close gives up",
			run:          func(r *row) (outcome, error) { return engineAddOnce(r, n) }},
	}
}

// tokenTTL is how long the rows' tokens stay in Redis: long enough for
// every retry of a row, short enough not to linger in a shared Redis.
const tokenTTL = time.Minute

// events hands each goroutine its sequence of event tokens, every eighth
// a retry of the one before, and counts the distinct ones.
type events struct {
	seq      []int64
	distinct []int64
	last     []string
}

func newEvents(n int) *events {
	return &events{seq: make([]int64, n), distinct: make([]int64, n), last: make([]string, n)}
}

// next returns goroutine g's next token.
func (ev *events) next(g int) string {
	ev.seq[g]++
	if ev.seq[g]%8 == 0 {
		return ev.last[g] // the client retries: same token
	}
	ev.distinct[g]++
	ev.last[g] = "request-" + strconv.Itoa(g) + "-" + strconv.FormatInt(ev.seq[g], 10)
	return ev.last[g]
}

// total returns the number of distinct events: what Redis must count.
func (ev *events) total() (n int64) {
	for _, d := range ev.distinct {
		n += d
	}
	return n
}

// verify checks that key counted each distinct event once.
func (r *row) verifyOnce(rdb *redis.Client, key string, ops int64, el time.Duration, ev *events, note string) (outcome, error) {
	v, mismatch, err := r.checkTotal(rdb, key, ev.total())
	if mismatch != "" {
		note = mismatch
	}
	return outcome{ops: ops, elapsed: el, verified: v, note: note}, err
}

// naiveSetNXIncrBy sends SET token NX PX, then INCRBY when the token was
// new: two round trips per event, and a crash between them loses it.
func naiveSetNXIncrBy(r *row, n int) (outcome, error) {
	rdb := r.open(n)
	defer rdb.Close()
	key := r.ns + "billed"
	*r.keys = append(*r.keys, key)
	ev := newEvents(n)
	ops, el, err := r.hammer(n, func(g int) (int64, error) {
		ok, err := rdb.SetNX(r.ctx, r.ns+"once:"+ev.next(g), 1, tokenTTL).Result()
		if err == nil && ok {
			err = rdb.IncrBy(r.ctx, key, 1).Err()
		}
		return 1, err
	})
	if err != nil {
		return outcome{}, err
	}
	return r.verifyOnce(rdb, key, ops, el, ev, "")
}

// setNXIncrBy is the script a careful user writes to make SET NX and
// INCRBY one atomic round trip.
var setNXIncrBy = redis.NewScript(`
if redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[2]) then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
`)

// scriptSetNXIncrBy runs setNXIncrBy per event (EVALSHA): one round trip.
func scriptSetNXIncrBy(r *row, n int) (outcome, error) {
	rdb := r.open(n)
	defer rdb.Close()
	key := r.ns + "billed"
	*r.keys = append(*r.keys, key)
	ev := newEvents(n)
	ttl := tokenTTL.Milliseconds()
	ops, el, err := r.hammer(n, func(g int) (int64, error) {
		err := setNXIncrBy.Run(r.ctx, rdb, []string{key, r.ns + "once:" + ev.next(g)}, 1, ttl).Err()
		if errors.Is(err, redis.Nil) {
			err = nil // a retry: not counted
		}
		return 1, err
	})
	if err != nil {
		return outcome{}, err
	}
	return r.verifyOnce(rdb, key, ops, el, ev, "")
}

// engineAddOnce calls Counter.AddOnce from n goroutines. Its time runs
// until Close has written every token, since Redis' work (a SET per
// token) is what bounds it; an add turned away for a full backlog
// (ErrTokenBacklog) is tried again after a millisecond, as a caller
// would retry its request.
func engineAddOnce(r *row, n int) (outcome, error) {
	rdb := r.open(0)
	defer rdb.Close()
	e, err := engine.New(rdb, engine.Options{Namespace: r.ns, FlushInterval: r.cfg.flushInterval,
		RecordTTL: time.Minute, TokenTTL: tokenTTL})
	if err != nil {
		return outcome{}, err
	}
	c, err := e.Counter("billed")
	if err != nil {
		return outcome{}, err
	}
	*r.keys = append(*r.keys, e.Key("billed"))
	ev := newEvents(n)
	const batch = 64
	start := time.Now()
	ops, _, err := r.hammer(n, func(g int) (int64, error) {
		for i := range batch {
			token := ev.next(g)
			for {
				err := c.AddOnce(1, token)
				if !errors.Is(err, engine.ErrTokenBacklog) {
					if err != nil {
						return int64(i), err
					}
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		return batch, nil
	})
	if err != nil {
		return outcome{}, err
	}
	o := outcome{ops: ops}
	if err := r.closeEngine(e, &o); err != nil {
		return outcome{}, err
	}
	el := time.Since(start)
	s := e.Stats().Once
	note := fmt.Sprintf("time includes Close; retries: %d dropped in the process, %d refused by Redis; %d waits on a full backlog",
		s.Dropped, s.Seen, s.Backlogged)
	return r.verifyOnce(rdb, e.Key("billed"), ops, el, ev, note)
}
