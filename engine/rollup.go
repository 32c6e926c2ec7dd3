package engine

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/lease"
	"github.com/abacus-go/abacus/queue"
)

// rollupLease is the name of the lease whose holder finalizes windows.
const rollupLease = "rollup"

// RollupOptions configure StartRollup. The zero value gives the defaults
// noted on each field; invalid values make StartRollup return an
// *OptionError.
type RollupOptions struct {
	// Queue and QueuePrefix name the queue of the windowed counters to
	// finalize, as in WindowOptions; finalized totals are pushed onto it.
	// Defaults DefaultWindowQueue and queue.DefaultPrefix.
	Queue       string
	QueuePrefix string
	// Grace is how long after a window's end it is finalized. It must be
	// at least the staleness bound (FlushInterval plus one flush, see
	// Stats.MaxStaleness), or deltas still on their way are left out of
	// the total. Default FlushInterval + FlushTimeout; at least
	// FlushInterval.
	Grace time.Duration
	// Interval is how often the lease holder looks for windows due. Default
	// 500ms.
	Interval time.Duration
	// LeaseTTL is the rollup lease's TTL: a dead holder is replaced after
	// about that long. Default 5s; at least 10ms.
	LeaseTTL time.Duration
	// Retention is the expiry set on a window's key, and on its
	// finalization marker, when it is finalized. Default 24h.
	Retention time.Duration
	// OnError, when set, receives errors of the rollup's background work.
	OnError func(error)
}

// WindowRecord is what the rollup publishes for each finalized window, as
// JSON in the body of a queue message whose ID is derived from the window
// (the same ID however often it were published).
type WindowRecord struct {
	Name    string `json:"name"`     // the windowed counter's name
	StartMS int64  `json:"start_ms"` // window start, ms since the Unix epoch
	SizeMS  int64  `json:"size_ms"`  // window length in ms
	Total   int64  `json:"total"`    // the count in Redis at finalization
}

// Start returns the window's start time.
func (r WindowRecord) Start() time.Time { return time.UnixMilli(r.StartMS) }

// ParseWindowRecord decodes the body of a message published by the rollup.
func ParseWindowRecord(body []byte) (WindowRecord, error) {
	var r WindowRecord
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("engine: window record: %w", err)
	}
	return r, nil
}

// Rollup finalizes closed windows while its process holds the rollup
// lease. Start it with Engine.StartRollup and end it with Stop; it is safe
// for concurrent use.
type Rollup struct {
	e      *Engine
	opts   RollupOptions
	keys   windowKeys
	cancel context.CancelFunc
	done   chan struct{}

	finalized atomic.Int64
	owner     atomic.Bool
	stopOnce  sync.Once
}

// StartRollup starts a goroutine that contends for the rollup lease of
// opts.Queue and, while holding it, finalizes every registered window whose
// end plus Grace has passed: in one Lua script it checks the lease, reads
// the window's total, pushes a WindowRecord onto the queue, marks the
// window finalized, sets Retention as the window key's expiry, and removes
// it from the pending set. Since all of that is one atomic step, a lease
// holder that dies or is replaced cannot leave a window published but not
// marked, or marked but not published: each registered window is published
// exactly once. Run it in every process that should be able to take over;
// one holds the lease at a time. It runs until Stop, until ctx ends, or
// until Engine.Close, which stops it (handing the lease over) before the
// final flush.
//
// Deltas that reach Redis after their window was finalized (a writer
// slower than Grace, or cut off from Redis for longer) count in the window
// key but not in the published total.
func (e *Engine) StartRollup(ctx context.Context, opts RollupOptions) (*Rollup, error) {
	if e.state.Load() != open {
		return nil, ErrClosed
	}
	opts, keys, err := opts.resolve(e)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Rollup{e: e, opts: opts, keys: keys, cancel: cancel, done: make(chan struct{})}
	e.rollups.mu.Lock()
	defer e.rollups.mu.Unlock()
	if e.state.Load() != open { // Close ran meanwhile and will not see r
		cancel()
		return nil, ErrClosed
	}
	if e.rollups.live == nil {
		e.rollups.live = make(map[*Rollup]struct{})
	}
	e.rollups.live[r] = struct{}{}
	go r.run(ctx)
	return r, nil
}

func (o RollupOptions) resolve(e *Engine) (RollupOptions, windowKeys, error) {
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"Grace", o.Grace}, {"Interval", o.Interval}, {"LeaseTTL", o.LeaseTTL}, {"Retention", o.Retention}} {
		if d.v < 0 {
			return o, windowKeys{}, &OptionError{"RollupOptions." + d.field, d.v, "must be positive (or zero for the default)"}
		}
	}
	if o.Grace == 0 {
		o.Grace = e.opts.FlushInterval + e.opts.FlushTimeout
	}
	if o.Grace < e.opts.FlushInterval {
		return o, windowKeys{}, &OptionError{"RollupOptions.Grace", o.Grace, "must be at least FlushInterval (the staleness bound)"}
	}
	if o.Interval == 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 5 * time.Second
	}
	if o.LeaseTTL < 10*time.Millisecond {
		return o, windowKeys{}, &OptionError{"RollupOptions.LeaseTTL", o.LeaseTTL, "must be at least 10ms"}
	}
	if o.Retention == 0 {
		o.Retention = 24 * time.Hour
	}
	k, err := windowKeysFor(e, o.QueuePrefix, o.Queue)
	return o, k, err
}

// Stop ends the rollup, releasing the lease if held, and waits for it.
func (r *Rollup) Stop() {
	r.stopOnce.Do(r.cancel)
	<-r.done
	r.e.rollups.mu.Lock()
	delete(r.e.rollups.live, r)
	r.e.rollups.mu.Unlock()
}

// rollups are an engine's running Rollups, for Close to stop.
type rollups struct {
	mu   sync.Mutex
	live map[*Rollup]struct{} // guarded by mu
}

// stopRollups stops every running Rollup; StartRollup fails once closed is
// set, so none can start meanwhile.
func (e *Engine) stopRollups() {
	e.rollups.mu.Lock()
	live := make([]*Rollup, 0, len(e.rollups.live))
	for r := range e.rollups.live {
		live = append(live, r)
	}
	e.rollups.mu.Unlock()
	for _, r := range live {
		r.Stop()
	}
}

// Finalized returns how many windows this Rollup has published.
func (r *Rollup) Finalized() int64 { return r.finalized.Load() }

// Owner reports whether this Rollup holds the rollup lease right now.
func (r *Rollup) Owner() bool { return r.owner.Load() }

func (r *Rollup) report(err error) {
	if r.opts.OnError != nil {
		r.opts.OnError(err)
	}
}

func (r *Rollup) run(ctx context.Context) {
	defer close(r.done)
	lo := lease.Options{
		KeyPrefix: r.keys.lease, AutoRenew: true, Now: r.e.opts.Now,
		MinRetryDelay: min(lease.DefaultMinRetryDelay, r.opts.Interval), MaxRetryDelay: r.opts.Interval,
	}
	lease.Hold(ctx, r.e.rdb, rollupLease, r.opts.LeaseTTL, lo, r.whileHeld, func(err error) {
		r.report(fmt.Errorf("engine: rollup lease: %w", err))
	})
}

// whileHeld finalizes due windows every Interval until ctx ends: when the
// lease is lost or the Rollup stops.
func (r *Rollup) whileHeld(ctx context.Context, l *lease.Lease) {
	r.owner.Store(true)
	defer r.owner.Store(false)
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		if _, err := r.finalizeDue(l.Context(), l); err != nil && l.Err() == nil {
			r.report(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// finalizeDue finalizes every pending window whose end plus Grace is
// before now, oldest first, and returns how many it published.
func (r *Rollup) finalizeDue(ctx context.Context, l *lease.Lease) (int, error) {
	due := r.e.opts.Now().Add(-r.opts.Grace).UnixMilli()
	members, err := r.e.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: r.keys.pending, Start: "-inf", Stop: strconv.FormatInt(due, 10), ByScore: true, Count: 256,
	}).Result()
	if err != nil {
		return 0, fmt.Errorf("engine: rollup: pending windows: %w", err)
	}
	n := 0
	var errs []error
	for _, m := range members {
		ok, err := r.finalize(ctx, l, m)
		if err != nil {
			errs = append(errs, err)
			if l.Err() != nil || ctx.Err() != nil {
				break
			}
			continue
		}
		if ok {
			n++
			r.finalized.Add(1)
		}
	}
	return n, errors.Join(errs...)
}

// finalizeScript publishes one window. KEYS: pending set, window key,
// finalized marker, queue ready list, rollup lease. ARGV: pending member,
// lease token, message header (queue.Encode of the ID, no body), name,
// start ms, size ms, retention ms. Returns 1 when published, 0 when the
// window was already finalized (or is no longer pending), and the error
// FENCED when the caller does not hold the lease.
var finalizeScript = redis.NewScript(`
if redis.call('GET', KEYS[5]) ~= ARGV[2] then
	return redis.error_reply('FENCED rollup lease not held')
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then
	-- Registered again after finalization by a late writer.
	redis.call('ZREM', KEYS[1], ARGV[1])
	return 0
end
local total = redis.call('GET', KEYS[2]) or '0'
if not string.match(total, '^-?%d+$') then
	return redis.error_reply('NOTINT window key does not hold an integer')
end
-- Built by hand: cjson would print a large total as a rounded float.
local rec = '{"name":' .. cjson.encode(ARGV[4]) .. ',"start_ms":' .. ARGV[5] ..
	',"size_ms":' .. ARGV[6] .. ',"total":' .. total .. '}'
redis.call('LPUSH', KEYS[4], ARGV[3] .. rec)
redis.call('SET', KEYS[3], '1', 'PX', ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`)

// WindowMessageID returns the queue message ID under which the window of
// the named counter starting at start (ms) is published: a hash of the
// window, so a consumer can recognise a redelivery.
func WindowMessageID(name string, startMS, sizeMS int64) queue.ID {
	sum := sha256.Sum256([]byte(pendingMember(sizeMS, startMS, name)))
	var id queue.ID
	copy(id[:], sum[:])
	return id
}

func (r *Rollup) finalize(ctx context.Context, l *lease.Lease, member string) (bool, error) {
	size, start, name, err := parsePendingMember(member)
	if err != nil {
		// Not ours to interpret; drop it so it does not block the set.
		r.e.rdb.ZRem(ctx, r.keys.pending, member)
		return false, err
	}
	winKey := r.e.Key(windowCounterName(r.queueName(), name, size, start))
	keys := []string{r.keys.pending, winKey, winKey + ":final", r.keys.queue.Ready, l.Key()}
	header := queue.Encode(WindowMessageID(name, start, size), nil)
	n, err := finalizeScript.Run(ctx, r.e.rdb, keys, member, l.Token(), header, name, start, size, r.opts.Retention.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("engine: finalize window %s: %w", member, err)
	}
	return n == 1, nil
}

func (r *Rollup) queueName() string {
	if r.opts.Queue == "" {
		return DefaultWindowQueue
	}
	return r.opts.Queue
}
