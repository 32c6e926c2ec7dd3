package window

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/internal/script"
	"github.com/abacus-go/abacus/lease"
	"github.com/abacus-go/abacus/queue"
)

// RollupOptions configure StartRollup. The zero value gives the defaults
// noted on each field.
type RollupOptions struct {
	// Group names the windows to finalize, as in Options. Default
	// DefaultGroup.
	Group string
	// Grace is how long after a window's end it is finalized. It must be
	// at least the engine's staleness bound (FlushInterval plus one flush,
	// see engine.Stats.MaxStaleness), or deltas still on their way are left
	// out of the total. Default the engine's FlushInterval + FlushTimeout;
	// at least its FlushInterval.
	Grace time.Duration
	// Interval is how often the lease holder looks for windows due.
	// Default 500ms.
	Interval time.Duration
	// LeaseTTL is the rollup lease's TTL: a dead holder is replaced after
	// about that long. Default 5s; at least 10ms.
	LeaseTTL time.Duration
	// Retention is the expiry set on a window's key, and on its
	// finalization marker, when it is finalized. Default 24h.
	Retention time.Duration
	// OnError, when set, receives the errors of the rollup's background
	// work, from its goroutine.
	OnError func(error)
	// Logger, when not nil, receives the rollup's lifecycle events: the
	// rollup lease acquired, released or lost (see lease.Options.Logger).
	Logger *slog.Logger
}

func (o RollupOptions) resolve(e *engine.Engine) (RollupOptions, group, error) {
	if err := invalid.NonNegative(ErrInvalid, "RollupOptions", o); err != nil {
		return o, group{}, err
	}
	eo := e.Options()
	if o.Grace == 0 {
		o.Grace = eo.FlushInterval + eo.FlushTimeout
	}
	if o.Grace < eo.FlushInterval {
		return o, group{}, invalid.New(ErrInvalid, "RollupOptions.Grace", o.Grace, "must be at least the engine's FlushInterval (the staleness bound)")
	}
	if o.Interval == 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 5 * time.Second
	}
	if o.LeaseTTL < 10*time.Millisecond {
		return o, group{}, invalid.New(ErrInvalid, "RollupOptions.LeaseTTL", o.LeaseTTL, "must be at least 10ms")
	}
	if o.Retention == 0 {
		o.Retention = 24 * time.Hour
	}
	g, err := newGroup(e, o.Group)
	return o, g, err
}

// Rollup finalizes the closed windows of a group while its process holds
// the group's rollup lease. Start it with StartRollup and end it with
// Close; it is safe for concurrent use.
type Rollup struct {
	e      *engine.Engine
	q      *queue.Queue
	opts   RollupOptions
	group  group
	cancel context.CancelFunc
	done   chan struct{}

	finalized atomic.Int64
	owner     atomic.Bool
	stopOnce  sync.Once
}

// StartRollup starts a goroutine that contends for the rollup lease of
// opts.Group and, while holding it, finalizes every window of the group
// counted through e (in this process or any other with the same engine
// Namespace) whose end plus Grace has passed, publishing a Record of each
// on q. Run it in every process that should be able to take over; one
// holds the lease at a time. It runs until Close or until ctx ends. Close
// it before e's Redis client.
func StartRollup(ctx context.Context, e *engine.Engine, q *queue.Queue, opts RollupOptions) (*Rollup, error) {
	if e == nil || q == nil {
		return nil, invalid.New(ErrInvalid, "engine and queue", nil, "both are required")
	}
	opts, g, err := opts.resolve(e)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Rollup{e: e, q: q, opts: opts, group: g, cancel: cancel, done: make(chan struct{})}
	go r.run(ctx)
	return r, nil
}

// Close ends the rollup, releasing the lease if held, and waits for it
// until ctx ends; it returns ctx's error if it stopped waiting.
func (r *Rollup) Close(ctx context.Context) error {
	r.stopOnce.Do(r.cancel)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("window: rollup close: %w", ctx.Err())
	}
}

// Finalized returns how many windows this Rollup has published.
func (r *Rollup) Finalized() int64 { return r.finalized.Load() }

// Owner reports whether this Rollup holds the rollup lease right now.
func (r *Rollup) Owner() bool { return r.owner.Load() }

// LeaseName is the name of the rollup lease of group (DefaultGroup when
// empty), under the lease key prefix Namespace+"lease:" of the engine.
func LeaseName(group string) string {
	if group == "" {
		group = DefaultGroup
	}
	return "windows:" + group
}

func (r *Rollup) report(err error) {
	if r.opts.OnError != nil {
		r.opts.OnError(err)
	}
}

func (r *Rollup) run(ctx context.Context) {
	defer close(r.done)
	lo := lease.Options{
		KeyPrefix: r.e.Options().Namespace + "lease:", AutoRenew: true, Logger: r.opts.Logger,
		MinRetryDelay: min(lease.DefaultMinRetryDelay, r.opts.Interval), MaxRetryDelay: r.opts.Interval,
	}
	lease.Hold(ctx, r.e.Client(), LeaseName(r.group.name), r.opts.LeaseTTL, lo, r.whileHeld, func(err error) {
		r.report(fmt.Errorf("window: rollup lease: %w", err))
	})
}

// whileHeld finalizes due windows every Interval until ctx ends: when the
// lease is lost or the Rollup closes.
func (r *Rollup) whileHeld(ctx context.Context, l *lease.Lease) {
	r.owner.Store(true)
	defer r.owner.Store(false)
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		if err := r.finalizeDue(ctx); err != nil && ctx.Err() == nil {
			r.report(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// finalizeDue finalizes every pending window whose end plus Grace has
// passed, oldest first, 256 a round.
func (r *Rollup) finalizeDue(ctx context.Context) error {
	due := time.Now().Add(-r.opts.Grace).UnixMilli()
	members, err := r.e.Client().ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: r.group.pending, Start: "-inf", Stop: strconv.FormatInt(due, 10), ByScore: true, Count: 256,
	}).Result()
	if err != nil {
		return fmt.Errorf("window: rollup: pending windows: %w", err)
	}
	var errs []error
	for _, m := range members {
		if err := r.finalize(ctx, m); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// finalizeScript fixes a window's total. KEYS: pending set, window key,
// marker. ARGV: pending member, retention ms. The marker holds "p:<total>"
// from the first finalization until the record is published, then
// "d:<total>". It returns the total to publish (as a string: a Lua number
// would round a large one), or nil when there is nothing to publish: the
// window is no longer pending, or was published and registered again by
// a late writer.
var finalizeScript = redis.NewScript(`
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return false end
local m = redis.call('GET', KEYS[3])
if not m then
	local total = redis.call('GET', KEYS[2]) or '0'
	if not string.match(total, '^-?%d+$') then
		return redis.error_reply('NOTINT window key does not hold an integer')
	end
	redis.call('SET', KEYS[3], 'p:' .. total, 'PX', ARGV[2])
	redis.call('PEXPIRE', KEYS[2], ARGV[2])
	return total
end
if string.sub(m, 1, 2) == 'd:' then
	redis.call('ZREM', KEYS[1], ARGV[1])
	return false
end
return string.sub(m, 3)
`)

// publishedScript marks a window published. KEYS: pending set, marker.
// ARGV: pending member.
var publishedScript = redis.NewScript(`
local m = redis.call('GET', KEYS[2])
if m and string.sub(m, 1, 2) == 'p:' then
	redis.call('SET', KEYS[2], 'd:' .. string.sub(m, 3), 'KEEPTTL')
end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`)

// finalize publishes one window: fix its total, push the record, mark it
// published. Each step is idempotent, so a holder that fails or dies
// between them leaves the window pending for the next round or holder,
// which publishes the same total under the same ID.
func (r *Rollup) finalize(ctx context.Context, member string) error {
	rdb := r.e.Client()
	size, start, name, err := parsePendingMember(member)
	if err != nil {
		// Not ours to interpret; drop it so it does not block the set.
		rdb.ZRem(ctx, r.group.pending, member)
		return err
	}
	key := r.e.Key(r.group.counterName(name, size, start))
	marker := key + ":final"
	cmd, _ := script.Run(ctx, rdb, finalizeScript, []string{r.group.pending, key, marker}, member, r.opts.Retention.Milliseconds())
	s, err := cmd.Text()
	switch {
	case errors.Is(err, redis.Nil):
		return nil
	case err != nil:
		return fmt.Errorf("window: finalize %s: %w", member, err)
	}
	total, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("window: finalize %s: total %q: %w", member, s, err)
	}
	body, err := json.Marshal(Record{Name: name, StartMS: start, SizeMS: size, Total: total})
	if err != nil {
		return fmt.Errorf("window: finalize %s: %w", member, err)
	}
	if err := r.q.PushWithIDs(ctx, []queue.ID{MessageID(name, start, size)}, body); err != nil {
		return fmt.Errorf("window: publish %s: %w", member, err)
	}
	if cmd, _ := script.Run(ctx, rdb, publishedScript, []string{r.group.pending, marker}, member); cmd.Err() != nil {
		return fmt.Errorf("window: mark %s published: %w", member, cmd.Err())
	}
	r.finalized.Add(1)
	return nil
}
