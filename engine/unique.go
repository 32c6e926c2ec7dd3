package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/hll"
)

// Unique is a handle on a distinct count, "unique visitors": how many
// different members were added, across every process adding to the same
// name. Get it from Engine.Unique; the zero value is not usable. It is
// safe for concurrent use.
//
// Members are sketched locally in a HyperLogLog that is Redis' own, and
// what they changed reaches the HyperLogLog at Key(name) once per flush
// interval, in one command: while a count is small, one PFADD of the
// distinct members that raised a register (at most 1,024); once it is
// large or busy, one script that merges the registers that rose
// (PFMERGE), and then Add costs no lock and members seen before cost
// nothing. So Redis work grows with names and flushes, not with Adds, and
// past a thousand members a flush not with members either. The count is
// PFCOUNT's, to the unit, for the same members: standard error 0.81 %.
// Adding a member or merging a register twice changes nothing, so what is
// resent after a lost reply or an outage is harmless: nothing is lost,
// nothing counted twice. Options.KeyTTL applies as to counters (each
// write refreshes it), and so does Options.Replicas (a WAIT follows the
// writes; what replicas did not acknowledge is sent again).
type Unique struct {
	e      *Engine
	name   string
	key    string
	sketch hll.Sketch

	// mu orders the writer's moves of registers (take, settle, restore)
	// against Count, which must find each register added before it in the
	// sketch, in flight, or in the Redis value it reads.
	mu       sync.Mutex
	inflight []hll.Update   // guarded by mu; taken, sent, not yet confirmed
	remote   *hll.Registers // guarded by mu; Redis' registers as last read, plus ours settled since
	readAt   time.Time      // guarded by mu; when remote was read
	epoch    uint64         // guarded by mu; bumped when registers settle
	cached   atomic.Bool    // remote is set, for the writer's sweep of stale reads

	// Owned by the flush holding uniques.sem.
	refusals    int       // consecutive refusals of the key
	retryAt     time.Time // a refused key is held back until then
	remoteDense bool      // Redis holds the count dense, as the last merge said
}

// Unique returns the distinct count named name, creating its handle on
// first use; every call with the same name returns the same handle, and
// looking up an existing one takes no lock. It is stored at Key(name),
// among the counters: a name must not be used for both. A handle stays
// in memory for the engine's life.
func (e *Engine) Unique(name string) (*Unique, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if e.state.Load() != open {
		return nil, ErrClosed
	}
	w := &e.uniques
	if u, ok := w.byName.Load(name); ok {
		return u.(*Unique), nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if u, ok := w.byName.Load(name); ok {
		return u.(*Unique), nil
	}
	key := e.Key(name)
	u := &Unique{e: e, name: key[len(key)-len(name):], key: key} // one string for both
	w.byName.Store(name, u)
	w.all = append(w.all, u)
	return u, nil
}

// Name returns the count's name.
func (u *Unique) Name() string { return u.name }

// Add adds member. It does no I/O, and does not allocate unless member
// raises a register of a small count, which keeps a copy of it until the
// next flush. After the engine is closed it drops member and counts the
// call in Stats.RejectedAdds.
func (u *Unique) Add(member string) {
	if u.admit() {
		u.sketch.Add(member)
		u.landed()
	}
}

// AddBytes adds member, as Add does; member is not retained.
func (u *Unique) AddBytes(member []byte) {
	if u.admit() {
		u.sketch.AddBytes(member)
		u.landed()
	}
}

// admit reports whether the engine accepts Adds, counting a rejection.
func (u *Unique) admit() bool {
	if u.e.state.Load() != open {
		u.e.rejected.Add(1)
		return false
	}
	return true
}

// landed counts an admitted Add as rejected if Close ended meanwhile: see
// Counter.Add.
func (u *Unique) landed() {
	if u.e.state.Load() == sealed {
		u.e.rejected.Add(1)
	}
}

// Count returns the number of distinct members added to the count by
// every process: the estimate of Redis' HyperLogLog merged with this
// process's members not yet written there, so a process always counts
// its own Adds. The Redis value may be reused for up to
// Options.MaxReadAge; concurrent reads of one count share one GET.
func (u *Unique) Count(ctx context.Context) (int64, error) {
	if u.e.state.Load() != open {
		return 0, ErrClosed
	}
	u.e.uniques.reads.Add(1)
	for fetched := false; ; fetched = true {
		if n, ok := u.estimate(fetched); ok {
			if !fetched {
				u.e.uniques.readHits.Add(1)
			}
			return n, nil
		}
		ch := u.e.uniques.fetches.DoChan(u.name, func() (any, error) { return nil, u.fetch() })
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case res := <-ch:
			if res.Err != nil {
				return 0, res.Err
			}
		}
	}
}

// estimate returns the count from the Redis value last read merged with
// the registers not yet written, if a value was read within MaxReadAge
// (or at all, with anyAge: just after a read, which the writer's sweep
// may have dropped already).
func (u *Unique) estimate(anyAge bool) (int64, bool) {
	opts := &u.e.opts
	var r hll.Registers
	u.mu.Lock()
	if u.remote == nil || !anyAge && (opts.MaxReadAge < 0 || time.Now().Sub(u.readAt) > opts.MaxReadAge) {
		u.mu.Unlock()
		return 0, false
	}
	r = *u.remote
	for _, up := range u.inflight {
		r.Set(up.Reg, up.Rank)
	}
	u.sketch.MergePending(&r)
	u.mu.Unlock()
	return int64(r.Estimate()), true
}

// fetch reads the count's registers from Redis into u.remote. The read
// must not miss a register that settles while it runs (settled registers
// are in Redis, no longer in flight, and go into u.remote only once it is
// set), so a read that overlapped a settle is done again. It does not use
// the caller's context: other readers share it.
func (u *Unique) fetch() error {
	e := u.e
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.FlushTimeout)
	defer cancel()
	for {
		u.mu.Lock()
		epoch := u.epoch
		u.mu.Unlock()
		e.uniques.readRoundTrips.Add(1)
		r, err := u.get(ctx)
		if err != nil {
			return err
		}
		u.mu.Lock()
		ok := u.epoch == epoch
		if ok {
			u.remote, u.readAt = r, time.Now()
			u.cached.Store(true)
		}
		u.mu.Unlock()
		if ok {
			return nil
		}
	}
}

// get reads the count's registers from Redis; a missing key is empty.
func (u *Unique) get(ctx context.Context) (*hll.Registers, error) {
	r := new(hll.Registers)
	b, err := u.e.rdb.Get(ctx, u.key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return r, nil
	case err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE"):
		return nil, fmt.Errorf("engine: count %q: %w", u.name, flush.ErrWrongType)
	case err != nil:
		return nil, fmt.Errorf("engine: count %q: %w", u.name, err)
	}
	if err := r.MergeEncoded(b); err != nil {
		return nil, fmt.Errorf("engine: count %q: %w: %w", u.name, flush.ErrWrongType, err)
	}
	return r, nil
}

// take moves the registers that rose since the last take in flight and
// returns them, with their members when the sketch kept them; they stay
// valid until settle or restore.
func (u *Unique) take() (ups []hll.Update, withMembers bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.inflight, withMembers = u.sketch.Take(nil)
	return u.inflight, withMembers
}

// settle records that the registers in flight are in Redis.
func (u *Unique) settle() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.remote != nil {
		for _, up := range u.inflight {
			u.remote.Set(up.Reg, up.Rank) // our merge is in Redis: the cache stays exact
		}
	}
	u.epoch++
	u.inflight = nil
}

// restore makes the registers in flight pending again, to be resent.
func (u *Unique) restore() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sketch.Restore(u.inflight)
	u.inflight = nil
}

// unwritten returns how many of the count's registers are not known to be
// in Redis, and how many of those are in flight.
func (u *Unique) unwritten() (registers, inDoubt int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sketch.Pending() + len(u.inflight), len(u.inflight)
}

// dropStaleRead forgets a Redis value older than MaxReadAge, so that
// counts read once do not keep 16 KiB each.
func (u *Unique) dropStaleRead(now time.Time) {
	if !u.cached.Load() {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if now.Sub(u.readAt) > u.e.opts.MaxReadAge {
		u.remote = nil
		u.cached.Store(false)
	}
}
