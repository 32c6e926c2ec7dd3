package engine

import (
	"errors"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/shard"
)

// ErrNotExactlyOnce is returned by AddOnce on an engine whose Delivery is
// flush.AtLeastOnce: tokens are checked by the exactly-once flush script,
// which that mode does not run.
var ErrNotExactlyOnce = errors.New("engine: retry-safe adds need exactly-once delivery")

// ErrTokenBacklog is returned by AddOnce when Options.MaxPendingTokens
// token adds wait for Redis already (it is down, or slower than the
// adds): the add is not taken. A caller may fail its request, to be
// retried with the same token.
var ErrTokenBacklog = errors.New("engine: too many token adds wait for Redis")

// AddOnce adds delta to the counter named name unless an add with the
// same token reached it before, in any process, within Options.TokenTTL:
// for usage that is billed, where a request retried by a load balancer or
// a client must not count twice. The token is the caller's idempotency
// key (a request ID, say), at most MaxNameLen bytes; its scope is the
// counter, so the same token on two counters counts on both. The delta of
// the first add of a token is the one that counts; a delta of 0 does
// nothing.
//
// Like Add it does no I/O: the add waits in memory with its token, and
// the flush script that writes it to Redis first creates the token's key
// (SET NX PX, in the counter key's hash slot), in the same atomic step,
// and applies the delta only if it could. So a token is remembered for
// TokenTTL after the flush that writes it, and a retry arriving after
// that counts again. A retry this process still holds the token of
// (waiting to be flushed, in flight, or written by a flush of its own
// that took it within the last min(TokenTTL, 1m), so before Redis'
// key expires) is dropped at once; any other goes to Redis, as does a
// retry of an add whose batch the flush gave up in doubt (a
// *flush.LostError: applied or not, this process cannot tell). The
// exactly-once of the flush covers lost replies, so a token is never
// counted twice by a resend either.
//
// Token adds cannot coalesce as Adds do: each waits in memory as an entry
// of its own (about 200 bytes) until Redis confirms it, so while Redis is
// down they pile up, up to Options.MaxPendingTokens. Value includes them,
// Close reports those it could not write (UnflushedError.Tokens), and
// Discard drops those not yet sent.
//
// It returns an *InvalidError for an empty or over-long name or token,
// ErrClosed after Close (counting the call in Stats.RejectedAdds),
// ErrNotExactlyOnce when Options.Delivery is flush.AtLeastOnce, and
// ErrTokenBacklog when MaxPendingTokens token adds wait already.
func (e *Engine) AddOnce(name string, delta int64, token string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return e.addOnce(name, e.table.Lookup(name), delta, token)
}

// AddOnce adds delta unless an add with the same token reached the
// counter before; see Engine.AddOnce.
func (c *Counter) AddOnce(delta int64, token string) error {
	return c.e.addOnce(c.c.Name(), c.c, delta, token)
}

// addOnce is AddOnce of the counter named name; c is its entry in the
// table, or nil, for its CounterOptions.
func (e *Engine) addOnce(name string, c *shard.Counter, delta int64, token string) error {
	if err := invalid.Name(ErrInvalid, "token", token); err != nil {
		return err
	}
	if e.opts.Delivery != flush.ExactlyOnce {
		return ErrNotExactlyOnce
	}
	if e.state.Load() != open {
		e.rejected.Add(1)
		return ErrClosed
	}
	if delta == 0 {
		return nil
	}
	if added, err := e.once.add(name, c, delta, e.tokenKey(name, token)); !added {
		return err
	}
	if e.state.Load() == sealed {
		e.rejected.Add(1) // Close ended meanwhile: see Counter.Add
		return ErrClosed
	}
	return nil
}

// tokenKey names the key in Redis that records token for the counter
// named name. It lives in the counter key's hash slot (see inSlotOf),
// so that the flush script may write it next to the counter on a Cluster,
// and holds the name's length, so that no other name and token make the
// same key.
func (e *Engine) tokenKey(name, token string) string {
	return e.inSlotOf(e.Key(name)) + "once:" + strconv.Itoa(len(name)) + ":" + name + ":" + token
}

// Bounds of the tokens a process remembers after their flush, to drop a
// retry without sending it: per shard, at most recallPerShard of them
// (16,384 in all), each for at most maxRecall (and TokenTTL).
const (
	onceShards     = 64
	recallPerShard = 256
	maxRecall      = time.Minute
)

// onces holds an engine's token adds (AddOnce) from the call until Redis
// confirms them, and their tokens for a while after, in shards by token
// key, each under its own lock: adds to one busy counter spread over
// them. An add moves, like a counter's delta, from pending to in flight
// (Take) to settled (Settle) or back to pending (Restore); those moves
// happen under the engine's lock too, so that Value sees each delta
// exactly once.
type onces struct {
	seed       maphash.Seed
	recall     time.Duration // how long a settled token is remembered: min(TokenTTL, maxRecall)
	maxPending int64         // Options.MaxPendingTokens; 0: no bound
	shards     [onceShards]onceShard

	// live counts the adds not settled, so that reads and drains of an
	// engine without any skip the shards.
	live       atomic.Int64
	remembered atomic.Int64 // settled tokens still remembered

	adds, dropped, applied, seen, lost, backlogged atomic.Uint64
}

// onceShard is some of the token adds. Its zero value is empty and
// usable.
type onceShard struct {
	mu      sync.Mutex
	live    atomic.Int64         // adds not settled; written under mu, read without it
	byKey   map[string]*onceAdd  // guarded by mu; by token key: pending, in flight or remembered
	byName  map[string]*onceSums // guarded by mu; per counter with adds not settled
	pending []*onceAdd           // guarded by mu; to drain, in the order they came
	// recalled is a ring of settled adds, oldest at head, made on first
	// use; guarded by mu.
	recalled []*onceAdd
	head, n  int
	_        [64]byte // keeps neighbouring shards' locks off one cache line
}

// onceAdd is one token add.
type onceAdd struct {
	key  string         // the token's Redis key (see tokenKey)
	name string         // the counter's
	c    *shard.Counter // the counter's table entry when added, for its CounterOptions; or nil
	n    int64
	// settled is set when the add leaves flight for good (Settle): from
	// then on it stays in byKey only while remembered, and its token is
	// dropped only until taken+recall.
	settled bool
	// taken is when the flusher last took the add: before Redis could
	// have written its token, so the token's key outlives
	// taken+TokenTTL, and remembering the token until taken+recall never
	// drops a retry that Redis would count.
	taken time.Time
}

// onceSums is what a counter's token adds that are not settled add up to.
type onceSums struct {
	adds     int   // how many
	delta    int64 // their sum
	flying   int   // how many of them are taken and not settled
	inFlight int64 // their sum
}

func (o *onces) init(opts Options) {
	o.seed = maphash.MakeSeed()
	o.recall = min(opts.TokenTTL, maxRecall)
	o.maxPending = int64(max(opts.MaxPendingTokens, 0))
}

// shard returns the shard of a token key.
func (o *onces) shard(key string) *onceShard {
	return &o.shards[maphash.String(o.seed, key)%onceShards]
}

// add makes delta under key pending for the counter named name and
// reports true; or it reports false, with no error when key is pending,
// in flight or remembered already, or ErrTokenBacklog when maxPending
// adds are pending already (give or take the adds racing with this one).
func (o *onces) add(name string, c *shard.Counter, delta int64, key string) (bool, error) {
	sh := o.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if a := sh.byKey[key]; a != nil && (!a.settled || time.Since(a.taken) <= o.recall) {
		o.dropped.Add(1)
		return false, nil
	}
	if o.maxPending > 0 && o.live.Load() >= o.maxPending {
		o.backlogged.Add(1)
		return false, ErrTokenBacklog
	}
	if sh.byKey == nil {
		sh.byKey, sh.byName = make(map[string]*onceAdd), make(map[string]*onceSums)
	}
	a := &onceAdd{key: key, name: name, c: c, n: delta}
	sh.byKey[key] = a // replaces a remembered add whose time is up
	s := sh.byName[name]
	if s == nil {
		s = new(onceSums)
		sh.byName[name] = s
	}
	s.adds++
	s.delta += delta
	sh.pending = append(sh.pending, a)
	sh.live.Add(1)
	o.live.Add(1)
	o.adds.Add(1)
	return true, nil
}

// sums returns what the counter's token adds not settled add up to, over
// the shards holding any. Value calls it under the engine's lock.
func (o *onces) sums(name string) onceSums {
	var sum onceSums
	if o.live.Load() == 0 {
		return sum
	}
	for i := range o.shards {
		sh := &o.shards[i]
		if sh.live.Load() == 0 {
			continue
		}
		sh.mu.Lock()
		if s := sh.byName[name]; s != nil {
			sum.adds += s.adds
			sum.delta += s.delta
			sum.flying += s.flying
			sum.inFlight += s.inFlight
		}
		sh.mu.Unlock()
	}
	return sum
}

// drainOnceLocked appends the pending token adds to dst, moving them in
// flight, and forgets remembered tokens whose time is up. e.mu is held;
// like Take, it lets go of it every takeChunk adds (yieldLocked), and
// holds a shard's lock for at most one chunk too.
func (e *Engine) drainOnceLocked(dst []flush.Delta) []flush.Delta {
	o := &e.once
	if o.live.Load() == 0 && o.remembered.Load() == 0 {
		return dst
	}
	now := time.Now()
	n := 0
	for i := range o.shards {
		sh := &o.shards[i]
		sh.mu.Lock()
		for sh.n > 0 && now.Sub(sh.recalled[sh.head].taken) > o.recall {
			sh.forgetOldest(o)
		}
		// The pending adds are the flusher's from here, as if in flight
		// already: Discard, which drops only pending ones, no longer
		// finds them, and adds made meanwhile wait for the next drain.
		taken := sh.pending
		sh.pending = nil
		sh.mu.Unlock()
		for rest := taken; len(rest) > 0; {
			chunk := rest[:min(len(rest), takeChunk-n%takeChunk)]
			rest = rest[len(chunk):]
			dst = e.takeOnceLocked(dst, sh, chunk, now)
			if n += len(chunk); n%takeChunk == 0 {
				e.yieldLocked()
			}
		}
		if len(taken) > 0 {
			clear(taken)
			sh.mu.Lock()
			if len(sh.pending) == 0 {
				sh.pending = taken[:0] // its buffer serves again
			}
			sh.mu.Unlock()
		}
	}
	return dst
}

// takeOnceLocked moves the pending adds of sh in chunk in flight, at
// now, appending their deltas to dst. e.mu is held.
func (e *Engine) takeOnceLocked(dst []flush.Delta, sh *onceShard, chunk []*onceAdd, now time.Time) []flush.Delta {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, a := range chunk {
		a.taken = now
		s := sh.byName[a.name]
		s.flying++
		s.inFlight += a.n
		d := flush.Delta{Key: a.name, N: a.n, Token: a.key, Ref: a}
		if a.c != nil && len(e.special) > 0 {
			if sp := e.special[a.c]; sp != nil {
				d.Register, d.TTLMillis = sp.opts.Register, sp.ttlMillis
			}
		}
		dst = append(dst, d)
	}
	return dst
}

// settleOnceLocked records the outcome of the token add of d: applied,
// not applied because Redis held the token (d.TokenSeen), or unknown, its
// batch lost in doubt (d.Lost). Only an applied add's token is
// remembered: the key of a token Redis held already was written earlier,
// by another add, and may expire any time; and a lost add may never have
// reached Redis, so a retry of it must go there, where the token decides.
// e.mu is held.
func (e *Engine) settleOnceLocked(d flush.Delta) {
	o := &e.once
	a := d.Ref.(*onceAdd)
	sh := o.shard(a.key)
	sh.mu.Lock()
	s := sh.byName[a.name]
	s.adds--
	s.delta -= a.n
	s.flying--
	s.inFlight -= a.n
	if s.adds == 0 {
		delete(sh.byName, a.name)
	}
	c := a.c
	a.settled, a.c = true, nil
	applied := !d.TokenSeen && !d.Lost
	if applied {
		sh.remember(a, o)
	} else if sh.byKey[a.key] == a {
		delete(sh.byKey, a.key)
	}
	sh.live.Add(-1)
	sh.mu.Unlock()
	o.live.Add(-1)
	if c != nil && len(e.special) > 0 {
		if sp := e.special[c]; sp != nil && sp.retired && !e.holdsLocked(c) {
			delete(e.special, c)
		}
	}
	switch {
	case d.TokenSeen:
		o.seen.Add(1)
	case d.Lost:
		o.lost.Add(1)
		e.settleCachedLocked(a.name, d)
	default:
		o.applied.Add(1)
		e.settleCachedLocked(a.name, d)
	}
}

// restoreOnce makes the token add of d pending again.
func (e *Engine) restoreOnce(d flush.Delta) {
	a := d.Ref.(*onceAdd)
	sh := e.once.shard(a.key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.byName[a.name]
	s.flying--
	s.inFlight -= a.n
	sh.pending = append(sh.pending, a)
}

// remember keeps the settled a in the ring, forgetting the oldest when
// it is full.
func (sh *onceShard) remember(a *onceAdd, o *onces) {
	if sh.recalled == nil {
		sh.recalled = make([]*onceAdd, recallPerShard)
	}
	if sh.n == len(sh.recalled) {
		sh.forgetOldest(o)
	}
	sh.recalled[(sh.head+sh.n)%len(sh.recalled)] = a
	sh.n++
	o.remembered.Add(1)
}

// forgetOldest drops the oldest remembered add, and its token unless a
// newer add took the token over.
func (sh *onceShard) forgetOldest(o *onces) {
	a := sh.recalled[sh.head]
	sh.recalled[sh.head] = nil
	sh.head = (sh.head + 1) % len(sh.recalled)
	sh.n--
	if sh.byKey[a.key] == a {
		delete(sh.byKey, a.key)
	}
	o.remembered.Add(-1)
}

// discard drops the pending token adds of the counter named name (not
// those in flight) and returns their sum.
func (o *onces) discard(name string) (n int64) {
	if o.live.Load() == 0 {
		return 0
	}
	for i := range o.shards {
		sh := &o.shards[i]
		if sh.live.Load() == 0 {
			continue
		}
		sh.mu.Lock()
		kept := sh.pending[:0]
		for _, a := range sh.pending {
			if a.name != name {
				kept = append(kept, a)
				continue
			}
			n += a.n
			delete(sh.byKey, a.key)
			s := sh.byName[name]
			s.adds--
			s.delta -= a.n
			if s.adds == 0 {
				delete(sh.byName, name)
			}
			sh.live.Add(-1)
			o.live.Add(-1)
		}
		clear(sh.pending[len(kept):])
		sh.pending = kept
		sh.mu.Unlock()
	}
	return n
}

// unwritten adds the token adds not settled to u, for Close.
func (o *onces) unwritten(u *UnflushedError) {
	if o.live.Load() == 0 {
		return
	}
	for i := range o.shards {
		sh := &o.shards[i]
		sh.mu.Lock()
		for name, s := range sh.byName {
			u.Tokens += s.adds
			u.TokenDelta += s.delta
			u.TokenInDoubt += s.inFlight
			if len(u.TokenNames) < 10 && !slices.Contains(u.TokenNames, name) {
				u.TokenNames = append(u.TokenNames, name)
			}
		}
		sh.mu.Unlock()
	}
}

// OnceStats are the figures of retry-safe adds (see Engine.AddOnce).
type OnceStats struct {
	// Adds counts AddOnce calls whose token was new to this process; each
	// is then Applied, Seen, Lost or Pending, unless Discard dropped it.
	Adds uint64
	// Dropped counts AddOnce calls dropped in this process: it held their
	// token (waiting, in flight, or remembered after its flush).
	Dropped uint64
	Applied uint64 // token adds Redis applied
	// Seen counts token adds Redis did not apply because it held their
	// token: a retry of an add that another process, or an earlier flush
	// of this one, wrote within TokenTTL.
	Seen uint64
	// Lost counts token adds whose batch was given up in doubt (see
	// flush.ErrRecordLost): applied or not, no one can tell. Their tokens
	// are not remembered, so a retry goes to Redis, which applies it
	// unless it holds the token.
	Lost    uint64
	Pending int // token adds not yet confirmed by Redis
	// Remembered counts the tokens this process wrote to Redis and drops
	// retries of without asking: at most 16,384, each for min(TokenTTL,
	// 1m) from the flush that took it, which Redis' key outlives.
	Remembered int
	// Backlogged counts AddOnce calls turned away with ErrTokenBacklog.
	Backlogged uint64
}

func (o *onces) stats() OnceStats {
	return OnceStats{
		Adds:       o.adds.Load(),
		Dropped:    o.dropped.Load(),
		Applied:    o.applied.Load(),
		Seen:       o.seen.Load(),
		Lost:       o.lost.Load(),
		Pending:    int(o.live.Load()),
		Remembered: int(o.remembered.Load()),
		Backlogged: o.backlogged.Load(),
	}
}
