package serial

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ io.Closer = (*Allocator)(nil)

// poisoned is stored in a block's cursor to end it early (regression,
// Resume, Close): every later claim lands past the block's size. 2^62 leaves
// room for 2^62 further claims before int64 could wrap.
const poisoned = 1 << 62

// block is a leased range of IDs (base, base+size]. Only used changes after
// the block is published through Allocator.cur.
type block struct {
	used    atomic.Int64 // offsets claimed so far; may run past size
	base    int64        // INCRBY reply minus size
	size    int64
	trigger int64     // offset whose issuance starts the next fetch; 0 for none
	started time.Time // when the block became current; written before publication
}

// Allocator hands out unique IDs from blocks leased from one Redis key.
// Create it with New; the zero value is not usable. It is safe for
// concurrent use.
type Allocator struct {
	_   [64]byte // keep cur, read on every Next, off other written lines
	cur atomic.Pointer[block]
	_   [56]byte

	rdb  redis.UniversalClient
	key  string
	opts Options

	mu        sync.Mutex
	ready     *block     // guarded by mu; prefetched block waiting to become current
	inflight  *fetchCall // guarded by mu; the one fetch in flight, or nil
	err       error      // guarded by mu; sticky: *RegressionError or ErrClosed
	gen       uint64     // guarded by mu; bumped by Resume so older fetches are discarded
	size      int64      // guarded by mu; size of the next block to request
	highWater int64      // guarded by mu; end of the highest accepted block
	retired   int64      // guarded by mu; IDs issued from blocks no longer current
	stats     counters   // guarded by mu
}

// counters are the Stats fields the slow path maintains.
type counters struct {
	blocks, roundTrips, fetchErrors, waits, regressions int64
}

// fetchCall is one INCRBY (and WAIT) in flight. err is written before done
// is closed and read after.
type fetchCall struct {
	done chan struct{}
	gen  uint64
	size int64
	err  error
}

// New returns an Allocator for key on rdb. It does no I/O: the first block
// is fetched by the first Next. rdb is shared, not owned: Close leaves it
// open. Invalid options yield an *OptionError, an empty key ErrEmptyKey.
func New(rdb redis.UniversalClient, key string, opts Options) (*Allocator, error) {
	if rdb == nil {
		return nil, ErrNilClient
	}
	if key == "" {
		return nil, ErrEmptyKey
	}
	o, err := opts.resolve(rdb)
	if err != nil {
		return nil, err
	}
	a := &Allocator{rdb: rdb, key: key, opts: o, size: o.MinBlock}
	a.cur.Store(&block{})
	return a, nil
}

// Key returns the Redis key the Allocator leases from.
func (a *Allocator) Key() string { return a.key }

// Next returns the next ID. When the current block has IDs left it costs
// one atomic add and does not look at ctx; otherwise it waits for the next
// block from Redis, returning ctx.Err() if ctx ends first (the fetch itself
// continues for later callers). It fails with a *RegressionError after a
// regression until Resume, with ErrClosed after Close, and with the fetch
// error (ErrNotInteger, ErrOverflow, *ReplicationError, a Redis error) when
// a block cannot be had.
func (a *Allocator) Next(ctx context.Context) (int64, error) {
	b := a.cur.Load()
	if off := b.used.Add(1); off <= b.size {
		if off == b.trigger {
			a.prefetch(b)
		}
		return b.base + off, nil
	}
	return a.nextSlow(ctx)
}

// NextN returns n IDs, increasing. They come from as many blocks as needed
// and need not be contiguous. On error it returns the IDs already taken
// (unique, usable or not) with the error. A negative n is ErrInvalidCount.
func (a *Allocator) NextN(ctx context.Context, n int) ([]int64, error) {
	if n < 0 {
		return nil, ErrInvalidCount
	}
	if n == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, n)
	for len(ids) < n {
		b := a.cur.Load()
		want := int64(n - len(ids))
		hi := b.used.Add(want)
		if lo := hi - want; lo < b.size {
			top := min(hi, b.size)
			for off := lo + 1; off <= top; off++ {
				ids = append(ids, b.base+off)
			}
			if lo < b.trigger && b.trigger <= top {
				a.prefetch(b)
			}
			continue
		}
		id, err := a.nextSlow(ctx)
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// nextSlow runs when the block a caller saw is used up: it installs the
// prefetched block, or starts (or joins) a fetch and waits for it.
func (a *Allocator) nextSlow(ctx context.Context) (int64, error) {
	waited := false
	for {
		a.mu.Lock()
		if a.err != nil {
			err := a.err
			a.mu.Unlock()
			return 0, err
		}
		b := a.cur.Load()
		if off := b.used.Add(1); off <= b.size { // another caller installed a block
			a.mu.Unlock()
			if off == b.trigger {
				a.prefetch(b)
			}
			return b.base + off, nil
		}
		if a.ready != nil {
			a.installLocked(a.ready)
			a.ready = nil
			a.mu.Unlock()
			continue
		}
		call := a.inflight
		if call == nil {
			// No prefetch was started or it failed: size from the whole block.
			a.resizeLocked(b, b.size)
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

// prefetch starts the background fetch of the block after b, which has
// just reached its trigger offset. It runs once per block.
func (a *Allocator) prefetch(b *block) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil || a.cur.Load() != b || a.ready != nil || a.inflight != nil {
		return
	}
	a.resizeLocked(b, b.trigger)
	a.startFetchLocked()
}

// resizeLocked sets the size of the next block from the rate at which b
// issued used IDs.
func (a *Allocator) resizeLocked(b *block, used int64) {
	if b.size == 0 {
		return // the empty block before the first fetch or after Resume
	}
	a.size = nextSize(a.size, used, a.opts.Now().Sub(b.started),
		a.opts.TargetLifetime, a.opts.MinBlock, a.opts.MaxBlock)
}

// installLocked makes nb current. The block it replaces is used up.
func (a *Allocator) installLocked(nb *block) {
	old := a.cur.Load()
	a.retired += old.size
	nb.started = a.opts.Now()
	a.cur.Store(nb)
}

// dropLocked ends the current block and discards the prefetched one, so that
// no ID is issued from them after this point: the atomic swap is the
// linearization point against concurrent Next calls.
func (a *Allocator) dropLocked() {
	old := a.cur.Load()
	used := old.used.Swap(poisoned)
	a.retired += min(used, old.size)
	a.cur.Store(&block{})
	a.ready = nil
}

// Close stops the Allocator: every later call returns ErrClosed and the IDs
// left in its blocks are abandoned. A fetch in flight is not interrupted
// (cancelling a go-redis command mid-reply costs the connection); it ends
// within the client's timeouts and its block is discarded. Close does not
// close the Redis client. It is idempotent and always returns nil.
func (a *Allocator) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == ErrClosed {
		return nil
	}
	a.err = ErrClosed
	a.dropLocked()
	return nil
}
