package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/hll"
	"github.com/abacus-go/abacus/internal/replicas"
)

// uniques is the engine's table of unique counts and their writer: a
// goroutine that, every FlushInterval, sends each count whose registers
// rose as one command, in pipelines of up to BatchKeys counts.
type uniques struct {
	byName sync.Map // name → *Unique; stored to under mu
	mu     sync.Mutex
	all    []*Unique // guarded by mu; only appended to

	sem      chan struct{} // held by the flush in progress
	opts     flush.Options // the flusher's, defaults applied
	replicas *replicas.Policy
	fetches  singleflight.Group
	cancel   context.CancelFunc
	done     chan struct{}

	flushes, commands, merges, waits, roundTrips, registers, failures, refusals atomic.Uint64
	reads, readHits, readRoundTrips                                             atomic.Uint64
}

// mergeScript merges registers into a unique count's HyperLogLog in one
// atomic step. KEYS[1] is the count's key and KEYS[2] a scratch key in its
// hash slot (PFMERGE merges keys only, and a script may touch one slot on
// a Cluster); ARGV[1] is the registers, encoded as a Redis HyperLogLog,
// and ARGV[2] the key's TTL in ms (0: none). A missing key is simply set.
// The scratch key exists only while the script runs, which no other
// command interleaves with; redis.pcall keeps a refused PFMERGE (WRONGTYPE:
// the key holds something else) from skipping its DEL, and the script then
// returns the refusal. It returns the key's encoding byte: 0 dense, 1
// sparse.
var mergeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[2], ARGV[1])
  local r = redis.pcall('PFMERGE', KEYS[1], KEYS[2])
  redis.call('DEL', KEYS[2])
  if type(r) == 'table' and r.err then return r end
end
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return string.byte(redis.call('GETRANGE', KEYS[1], 4, 4))
`)

// scratchKey returns the scratch key for merging into key.
func (e *Engine) scratchKey(key string) string {
	return e.inSlotOf(key) + "unique:scratch"
}

func (e *Engine) startUniques() {
	w := &e.uniques
	w.sem = make(chan struct{}, 1)
	w.opts = e.flusher.Options()
	w.replicas = replicas.New(w.opts.Replicas)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go e.runUniques(ctx)
}

// runUniques flushes every Interval, backing off up to MaxBackoff while
// flushes fail, until ctx is cancelled.
func (e *Engine) runUniques(ctx context.Context) {
	w := &e.uniques
	defer close(w.done)
	failures := 0
	for {
		wait := w.opts.Interval
		if failures > 0 {
			wait = min(w.opts.Interval<<min(failures, 20), w.opts.MaxBackoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		fctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
		refused, failed := e.flushUniques(fctx, false)
		cancel()
		if ctx.Err() != nil {
			return // stopped by Close, whose final flush reports
		}
		for _, err := range append(refused, failed) {
			if err != nil {
				e.report(err)
			}
		}
		if failed != nil {
			failures++
		} else {
			failures = 0
		}
	}
}

// flushUniquesNow writes the registers of every unique count that rose
// before the call, for Flush, and waits for Redis. It returns nil only
// when all of them are in Redis; otherwise the first failure, joined with
// a *UniqueKeyError for each count Redis refused. What was not written is
// kept and sent again.
func (e *Engine) flushUniquesNow(ctx context.Context) error {
	refused, failed := e.flushUniques(ctx, true)
	return errors.Join(append(refused, failed)...)
}

// flushUniques sends every count whose registers rose, except, unless
// force, those held back after a refusal. It stops at the first batch
// that fails (the others would most likely fail too), leaving the rest
// pending.
func (e *Engine) flushUniques(ctx context.Context, force bool) (refused []error, failed error) {
	w := &e.uniques
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-w.sem }()
	w.mu.Lock()
	all := w.all // a snapshot: appends do not touch its elements
	w.mu.Unlock()
	now := time.Now()
	var batch []*Unique
	wrote := false
	send := func() {
		r, f := e.writeUniques(ctx, batch)
		refused, failed = append(refused, r...), f
		wrote = true
		batch = batch[:0]
	}
	for _, u := range all {
		u.dropStaleRead(now)
		if failed != nil || !u.sketch.Dirty() || !force && now.Before(u.retryAt) {
			continue
		}
		if batch = append(batch, u); len(batch) == w.opts.BatchKeys {
			send()
		}
	}
	if failed == nil && len(batch) > 0 {
		send()
	}
	if wrote {
		w.flushes.Add(1)
	}
	return refused, failed
}

// uniqueWrite is one count's registers on their way: as the members that
// raised them (PFADD), or encoded for mergeScript.
type uniqueWrite struct {
	u       *Unique
	n       int    // registers
	members []any  // PFADD's arguments, or nil
	payload []byte // otherwise the registers, as a Redis HyperLogLog
}

// writeUniques sends the risen registers of us, followed by a WAIT when
// replicas must acknowledge them: then on a Cluster one pipeline per
// master, since a WAIT counts the writes of its own connection.
func (e *Engine) writeUniques(ctx context.Context, us []*Unique) (refused []error, failed error) {
	writes := make([]uniqueWrite, 0, len(us))
	for _, u := range us {
		ups, withMembers := u.take()
		switch {
		case len(ups) == 0:
			continue
		case withMembers:
			// Redis adds a few members much faster than it merges a
			// HyperLogLog into a small (sparse) one, which costs time in
			// the square of its size.
			members := make([]any, len(ups))
			for i, up := range ups {
				members[i] = up.Member
			}
			writes = append(writes, uniqueWrite{u: u, n: len(ups), members: members})
		case u.remoteDense:
			writes = append(writes, uniqueWrite{u: u, n: len(ups), payload: hll.Encode(nil, ups)})
		default:
			// Dense: Redis turns the key dense too, after which a merge
			// into it costs the same (one pass over the registers),
			// however many it has.
			writes = append(writes, uniqueWrite{u: u, n: len(ups), payload: hll.EncodeDense(nil, ups)})
		}
	}
	if len(writes) == 0 {
		return nil, nil
	}
	want := e.uniques.replicas.Want(ctx, e.rdb)
	cc, cluster := e.rdb.(*redis.ClusterClient)
	if want == 0 || !cluster {
		return e.writeUniquesOn(ctx, e.rdb.Pipeline(), writes, want)
	}
	byNode := make(map[*redis.Client][]uniqueWrite)
	var nodes []*redis.Client
	for _, x := range writes {
		node, err := cc.MasterForKey(ctx, x.u.key)
		if err != nil {
			for _, x := range writes {
				x.u.restore()
			}
			return nil, fmt.Errorf("engine: find the master of %s: %w", x.u.key, err)
		}
		if byNode[node] == nil {
			nodes = append(nodes, node)
		}
		byNode[node] = append(byNode[node], x)
	}
	for _, node := range nodes {
		r, f := e.writeUniquesOn(ctx, node.Pipeline(), byNode[node], want)
		refused, failed = append(refused, r...), cmp.Or(failed, f)
	}
	if failed != nil {
		// The per-master pipelines bypass the ClusterClient's handling of
		// MOVED: after a failover its slot map is stale until reloaded.
		cc.ReloadState(ctx)
	}
	return refused, failed
}

// writeUniquesOn sends writes through pipe, followed by WAIT want when
// want > 0, and settles or restores each count's registers by its reply.
// Writes applied but not acknowledged by enough replicas are restored and
// sent again: adding or merging twice is harmless.
func (e *Engine) writeUniquesOn(ctx context.Context, pipe redis.Pipeliner, writes []uniqueWrite, want int) (refused []error, failed error) {
	w := &e.uniques
	ttl := e.opts.KeyTTL
	sent := make([][]redis.Cmder, len(writes))
	for i, x := range writes {
		if x.members != nil {
			sent[i] = append(sent[i], pipe.PFAdd(ctx, x.u.key, x.members...))
			if ttl > 0 {
				sent[i] = append(sent[i], pipe.PExpire(ctx, x.u.key, ttl))
			}
			continue
		}
		// EVAL, not EVALSHA: the script is small next to its payload, and
		// a server that lost its script cache (a restart, a failover)
		// cannot refuse it.
		sent[i] = append(sent[i], mergeScript.Eval(ctx, pipe, []string{x.u.key, e.scratchKey(x.u.key)},
			x.payload, strconv.FormatInt(ttl.Milliseconds(), 10)))
		w.merges.Add(1)
	}
	var wait *redis.Cmd
	if want > 0 {
		wait = pipe.Do(ctx, "wait", want, w.opts.ReplicaTimeout.Milliseconds())
	}
	cmds, _ := pipe.Exec(ctx) // errors are read per command below
	w.roundTrips.Add(1)
	w.commands.Add(uint64(len(cmds)))
	var unreplicated error
	if wait != nil {
		w.waits.Add(1)
		acked, err := wait.Int64()
		w.replicas.Saw(int(acked))
		if err != nil || acked < int64(want) {
			op := fmt.Sprintf("merges of %d unique counts", len(writes))
			unreplicated = replicas.NewError(flush.ErrNotReplicated, op, want, int(acked), w.opts.ReplicaTimeout, err)
		}
	}
	now := time.Now()
	for i, x := range writes {
		var err error
		for _, c := range sent[i] {
			err = cmp.Or(err, c.Err())
		}
		switch {
		case err == nil && unreplicated == nil:
			if merge, ok := sent[i][0].(*redis.Cmd); ok {
				enc, _ := merge.Int()
				x.u.remoteDense = enc == 0
			}
			x.u.settle()
			x.u.refusals = 0
			w.registers.Add(uint64(x.n))
			continue
		case err == nil:
			failed = cmp.Or(failed, unreplicated)
		case strings.HasPrefix(err.Error(), "WRONGTYPE") || strings.HasPrefix(err.Error(), "INVALIDOBJ"):
			x.u.refusals++
			x.u.retryAt = now.Add(min(w.opts.Interval<<min(x.u.refusals-1, 20), w.opts.MaxKeyBackoff))
			refused = append(refused, &UniqueKeyError{Name: x.u.name, Refusals: x.u.refusals,
				Err: fmt.Errorf("%w: %w", flush.ErrWrongType, err)})
			w.refusals.Add(1)
		default:
			failed = cmp.Or(failed, fmt.Errorf("engine: write unique count %q: %w", x.u.name, err))
			if !errors.Is(err, context.Canceled) { // not a background flush that Close cut short
				w.failures.Add(1)
			}
		}
		x.u.restore()
	}
	return refused, failed
}

// UniqueStats is a snapshot of the activity of an Engine's unique counts.
type UniqueStats struct {
	Counts  int    // unique counts in memory (handles)
	Flushes uint64 // flushes that wrote at least one count
	// Commands counts the Redis commands flushes sent: per count with
	// risen registers per flush, a PFADD (and a PEXPIRE with KeyTTL) or a
	// merge script; and WAITs.
	Commands   uint64
	Merges     uint64 // merge scripts among them (large or busy counts)
	Waits      uint64 // WAITs among them
	RoundTrips uint64 // pipelines sent
	Registers  uint64 // registers written, as confirmed by Redis
	Failures   uint64 // counts whose write failed for a reason other than their key (or Close), and was resent
	Refusals   uint64 // counts whose write Redis refused for their key (see UniqueKeyError)

	Reads          uint64 // Count calls
	ReadCacheHits  uint64 // Count calls answered with a Redis value already read
	ReadRoundTrips uint64 // GETs sent for Count (shared by concurrent readers)
}

// uniqueStats returns a snapshot of the unique counts' figures, for Stats.
func (e *Engine) uniqueStats() UniqueStats {
	w := &e.uniques
	w.mu.Lock()
	n := len(w.all)
	w.mu.Unlock()
	return UniqueStats{
		Counts:         n,
		Flushes:        w.flushes.Load(),
		Commands:       w.commands.Load(),
		Merges:         w.merges.Load(),
		Waits:          w.waits.Load(),
		RoundTrips:     w.roundTrips.Load(),
		Registers:      w.registers.Load(),
		Failures:       w.failures.Load(),
		Refusals:       w.refusals.Load(),
		Reads:          w.reads.Load(),
		ReadCacheHits:  w.readHits.Load(),
		ReadRoundTrips: w.readRoundTrips.Load(),
	}
}
