package serial

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/internal/replicas"
)

// poisoned is stored in a block's cursor to end it early (regression,
// Resume, Close): every later claim lands past the block's size. 2^62 leaves
// room for 2^62 further claims before int64 could wrap.
const poisoned = 1 << 62

// block is a leased range of IDs (base, base+size], acknowledged by the
// replicas wanted when it was fetched. Only used changes after the block is
// published through Allocator.cur. It fills a 64-byte size class, so that
// the fields every Next reads share used's cache line and no other object
// does.
type block struct {
	used    atomic.Int64 // offsets claimed so far; may run past size
	base    int64        // INCRBY reply minus size
	size    int64
	trigger int64 // offset whose issuance starts the next fetch, 0 for none; set when installed
	drained bool  // guarded by Allocator.mu; the rate was measured when it ran out
	_       [31]byte
}

// Allocator hands out unique IDs from blocks leased from one Redis key.
// Create it with New; the zero value is not usable. It is safe for
// concurrent use.
type Allocator struct {
	_          [64]byte // keep cur and lanes, read on every Next, off other written lines
	cur        atomic.Pointer[block]
	lanes      []lane // Options.Unordered's lanes, nil otherwise; see lanes.go
	salt       uint64 // spreads goroutines over lanes
	chunkShift uint   // log2(2×len(lanes)): a block's size >> chunkShift is its chunk size
	_          [16]byte

	rdb    redis.UniversalClient
	key    string
	opts   Options
	policy *replicas.Policy // how many replicas a block waits for
	logger *slog.Logger     // Options.Logger with the key, or nil

	mu        sync.Mutex
	ready     []*block      // guarded by mu; fetched blocks waiting to become current, ascending
	readyIDs  int64         // guarded by mu; IDs in ready
	inflight  *fetchCall    // guarded by mu; the one fetch in flight, or nil
	retry     *time.Timer   // guarded by mu; background retry after a failed fetch, or nil
	err       error         // guarded by mu; sticky: *RegressionError or ErrClosed
	gen       uint64        // guarded by mu; bumped by Resume so older fetches are discarded
	size      int64         // guarded by mu; size of the next block to request
	rate      float64       // guarded by mu; IDs/s measured at the last trigger or drained block; 0 unknown
	measured  time.Time     // guarded by mu; when rate was measured, or the first block installed
	counted   int64         // guarded by mu; IDs issued by then
	lag       time.Duration // guarded by mu; longest recent fetch, decaying (see sizing.go)
	want      int           // guarded by mu; replicas the last fetch waited for
	failing   int64         // guarded by mu; fetches failed since the last success
	failure   error         // guarded by mu; the last of them, or nil
	failedAt  time.Time     // guarded by mu; the first of them
	discards  int64         // guarded by mu; blocks among them discarded for want of replicas
	highWater int64         // guarded by mu; end of the highest accepted block
	retired   int64         // guarded by mu; IDs issued from blocks no longer current
	stats     counters      // guarded by mu

	// now is the clock that measures rates and fetch times: time.Now, or
	// a fake one set by a test before the first call.
	now func() time.Time
}

// counters are the Stats fields the slow path maintains.
type counters struct {
	blocks, roundTrips, fetchErrors, waits, regressions, unreplicated int64
}

// fetchCall is one INCRBY (and WAIT) in flight. err is written before done
// is closed and read after.
type fetchCall struct {
	done  chan struct{}
	gen   uint64
	size  int64
	start time.Time // when it was requested
	err   error
}

// New returns an Allocator for key on rdb. It does no I/O: the first block
// is fetched by the first Next. rdb is shared, not owned: Close leaves it
// open. Invalid arguments and options yield an *InvalidError.
func New(rdb redis.UniversalClient, key string, opts Options) (*Allocator, error) {
	if err := invalid.Client(ErrInvalid, rdb); err != nil {
		return nil, err
	}
	if err := invalid.Name(ErrInvalid, "key", key); err != nil {
		return nil, err
	}
	o, err := opts.resolve(rdb)
	if err != nil {
		return nil, err
	}
	a := &Allocator{rdb: rdb, key: key, opts: o, policy: replicas.New(o.Replicas), size: o.MinBlock, now: time.Now}
	if o.Logger != nil {
		a.logger = o.Logger.With("key", key)
	}
	a.cur.Store(&block{})
	if o.Unordered {
		a.lanes, a.salt = newLanes(), rand.Uint64()
		a.chunkShift = uint(bits.TrailingZeros(uint(2 * len(a.lanes))))
	}
	return a, nil
}

// Key returns the Redis key the Allocator leases from.
func (a *Allocator) Key() string { return a.key }

// Next returns the next ID. When one is at hand it does not look at ctx:
// it costs one atomic add on the current block, and once per block the
// Allocator's mutex to start the next fetch. With Options.Unordered the
// add is on the chunk of the lane the caller hashes to, and a lane whose
// chunk is used up takes the mutex to claim (and allocate) the next chunk
// of the block; while blocks are too small for chunks, the add is on the
// block. When no ID is at hand it takes the next block held ahead, or
// waits for one from Redis, returning ctx.Err() if ctx ends first (the
// fetch itself continues for later callers). It fails with
// a *RegressionError after a regression until Resume, with ErrClosed after
// Close, and, only when no acknowledged block is left, with the error of
// the fetch it waited for (*ReplicationError, ErrNotInteger, ErrOverflow,
// a Redis error).
func (a *Allocator) Next(ctx context.Context) (int64, error) {
	if a.lanes != nil {
		return a.nextUnordered(ctx)
	}
	b := a.cur.Load()
	if off := b.used.Add(1); off <= b.size {
		if off == b.trigger {
			a.prefetch(b)
		}
		return b.base + off, nil
	}
	return a.nextSlow(ctx, nil)
}

// NextN returns n IDs, increasing. They come from as many blocks as needed
// and need not be contiguous. On error it returns the IDs already taken
// (unique, usable or not) with the error. A negative n is an *InvalidError.
func (a *Allocator) NextN(ctx context.Context, n int) ([]int64, error) {
	if n < 0 {
		return nil, invalid.New(ErrInvalid, "n", n, "must not be negative")
	}
	if n == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, n)
	for len(ids) < n {
		b := a.cur.Load()
		if first, got, trig := b.claim(int64(n - len(ids))); got > 0 {
			for id := first; id < first+got; id++ {
				ids = append(ids, id)
			}
			if trig {
				a.prefetch(b)
			}
			continue
		}
		id, err := a.nextSlow(ctx, nil)
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// nextSlow runs when the block (or, for Unordered, the lane l's chunk) a
// caller saw is used up: it claims an ID from the current block, installs
// the prefetched block, or starts (or joins) a fetch and waits for it.
func (a *Allocator) nextSlow(ctx context.Context, l *lane) (int64, error) {
	waited := false
	for {
		a.mu.Lock()
		if a.err != nil {
			err := a.err
			a.mu.Unlock()
			return 0, err
		}
		b := a.cur.Load()
		if id, ok := a.claimLocked(b, l); ok { // another caller installed a block, or it has IDs left
			a.mu.Unlock()
			return id, nil
		}
		if len(a.ready) > 0 {
			a.installLocked()
			a.mu.Unlock()
			continue
		}
		call := a.inflight
		if call == nil {
			// No prefetch was started or it failed: measure the rate
			// (once per block: retries after it would measure the
			// outage), and fetch now rather than at a scheduled retry.
			if !b.drained {
				b.drained = true
				a.resizeLocked()
			}
			call = a.startFetchLocked()
		}
		if !waited {
			waited = true
			a.stats.waits++
		}
		a.mu.Unlock()
		select {
		case <-call.done:
			if call.err != nil {
				return 0, call.err
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// prefetch runs once per block, when b's trigger offset is issued: it
// measures the rate and fetches ahead if no block is held (see
// fetchAheadLocked).
func (a *Allocator) prefetch(b *block) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prefetchLocked(b)
}

func (a *Allocator) prefetchLocked(b *block) {
	if a.err != nil || a.cur.Load() != b {
		return
	}
	a.resizeLocked()
	a.fetchAheadLocked()
}

// claimLocked takes the next ID of the current block b for nextSlow: for
// Next, one; for a lane l, a chunk that becomes the lane's, whose first ID
// it returns. Claiming under a.mu orders it against dropLocked, so no chunk
// is installed after a drop. It reports false when b is used up.
func (a *Allocator) claimLocked(b *block, l *lane) (int64, bool) {
	if l != nil {
		return a.refillLocked(b, l)
	}
	first, got, trig := b.claim(1)
	if trig {
		a.prefetchLocked(b)
	}
	return first, got == 1
}

// claim takes up to n IDs of b, which may be used up or poisoned: the
// first of them and how many (0 when b has none left), all consecutive,
// and whether they include the trigger offset, whose issuance starts the
// next fetch.
func (b *block) claim(n int64) (first, got int64, trigger bool) {
	hi := b.used.Add(n)
	lo := hi - n
	if lo >= b.size {
		return 0, 0, false
	}
	top := min(hi, b.size)
	return b.base + lo + 1, top - lo, lo < b.trigger && b.trigger <= top
}

// resizeLocked measures the rate at which IDs were issued since the last
// measure and sets the size of the next block from it.
func (a *Allocator) resizeLocked() {
	if a.cur.Load().size == 0 {
		return // the empty block before the first fetch or after Resume
	}
	now, issued := a.now(), a.issuedLocked()
	used, elapsed := issued-a.counted, now.Sub(a.measured)
	a.measured, a.counted = now, issued
	// A block issued faster than the clock can tell counts as issued in 1ns.
	a.rate = float64(used) / max(elapsed, time.Nanosecond).Seconds()
	floor := 2 * cover(a.rate, a.lag) // a block must outlast the fetch of the next
	a.size = nextSize(a.size, used, elapsed, a.opts.TargetLifetime, floor, a.opts.MinBlock, a.opts.MaxBlock)
}

// issued is how many IDs b issued: used, without the claims that ran past
// its end or the poisoning.
func (b *block) issued() int64 {
	return min(max(b.used.Load(), 0), b.size)
}

// issuedLocked is how many IDs were issued, from retired blocks and the
// current one, less those lanes hold (see heldLocked).
func (a *Allocator) issuedLocked() int64 {
	return a.retired + a.cur.Load().issued() - a.heldLocked()
}

// reserveLocked is how many IDs the blocks held beyond the current one
// should add up to, Options.Reserve at the rate IDs are issued; 0 for no
// reserve. The rate is read from the block size, which follows it within
// growth caps (a burst timed over microseconds does not fetch 64 blocks),
// except at MaxBlock, where only the measured rate tells how many blocks
// the reserve takes.
func (a *Allocator) reserveLocked() int64 {
	r := a.opts.Reserve
	if r == 0 && a.want > 0 {
		r = DefaultReserve
	}
	if r <= 0 || a.rate <= 0 {
		return 0
	}
	ids := float64(a.size) * r.Seconds() / a.opts.TargetLifetime.Seconds()
	if a.size >= a.opts.MaxBlock {
		ids = max(ids, min(a.rate*r.Seconds(), maxReserveBlocks*float64(a.opts.MaxBlock)))
	}
	return int64(ids)
}

// wantsBlockLocked reports whether another block should be fetched ahead:
// none is held and the current block reached its trigger, or the blocks
// held fall short of the reserve. Before the first block, callers fetch.
func (a *Allocator) wantsBlockLocked() bool {
	cur := a.cur.Load()
	if a.err != nil || a.inflight != nil || cur.size == 0 {
		return false
	}
	if len(a.ready) == 0 && cur.used.Load() >= cur.trigger {
		return true
	}
	return len(a.ready) < maxReserveBlocks && a.readyIDs < a.reserveLocked()
}

// fetchAheadLocked starts a background fetch if another block is wanted
// and no retry is scheduled (a failed fetch is retried after its backoff,
// not at every event).
func (a *Allocator) fetchAheadLocked() {
	if a.retry == nil && a.wantsBlockLocked() {
		a.startFetchLocked()
	}
}

// installLocked makes the first block held ahead current. The block it
// replaces is used up.
func (a *Allocator) installLocked() {
	nb := a.ready[0]
	a.ready[0] = nil
	a.ready = a.ready[1:]
	a.readyIDs -= nb.size
	old := a.cur.Load()
	a.retired += old.size
	if old.size == 0 { // the first block, or the first after Resume
		a.measured, a.counted = a.now(), a.retired
	}
	// The trigger is set now rather than when the block arrived, from the
	// latest rate and lag: a reserve block may have been fetched long before.
	nb.trigger = triggerOffset(nb.size, a.opts.PrefetchThreshold, cover(a.rate, a.lag))
	a.cur.Store(nb)
	a.fetchAheadLocked()
}

// dropLocked ends the current block and discards the prefetched one, so that
// no ID is issued from them after this point: the atomic swap is the
// linearization point against concurrent Next calls.
func (a *Allocator) dropLocked() {
	old := a.cur.Load()
	used := old.used.Swap(poisoned)
	a.retired += min(used, old.size) - a.dropLanesLocked()
	a.cur.Store(&block{})
	a.ready, a.readyIDs = nil, 0
	a.stopRetryLocked()
}

// stopRetryLocked cancels a scheduled retry.
func (a *Allocator) stopRetryLocked() {
	if a.retry != nil {
		a.retry.Stop()
		a.retry = nil
	}
}

// Close stops the Allocator: every later call returns ErrClosed and the
// IDs left in its blocks, current and held ahead, are abandoned. A fetch
// in flight is not interrupted (cancelling a go-redis command mid-reply
// costs the connection); Close waits until it has ended, within the
// client's timeouts, and discards its block, or returns ctx's error when
// ctx ends first. Close does not close the Redis client. It is idempotent.
func (a *Allocator) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.err != ErrClosed {
		a.err = ErrClosed
		a.dropLocked()
	}
	c := a.inflight
	a.mu.Unlock()
	if c == nil {
		return nil
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("serial: close: %w", ctx.Err())
	}
}

// log sends a lifecycle event to Options.Logger, if any, with the key
// (a.logger carries it).
func (a *Allocator) log(level slog.Level, msg string, args ...any) {
	if a.logger != nil {
		a.logger.Log(context.Background(), level, msg, args...)
	}
}
