package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/queue"
	"github.com/abacus-go/abacus/shard"
)

// keptWindows is how many windows back a Windowed keeps its counters in
// the engine's table; older ones are deleted when a new window starts.
const keptWindows = 16

// DefaultWindowQueue is the queue that receives finalized window totals
// when WindowOptions.Queue and RollupOptions.Queue are empty.
const DefaultWindowQueue = "abacus-windows"

// WindowOptions configure a windowed counter. The zero value gives the
// defaults noted on each field; invalid values make Engine.Windowed return
// an *OptionError.
type WindowOptions struct {
	// Size is the length of one window; windows start at multiples of
	// Size since the Unix epoch. Default one minute; at least 1ms.
	Size time.Duration
	// Queue names the queue (package queue) that receives the window's
	// finalized totals. Default DefaultWindowQueue. The window keys carry
	// the queue's hash tag, so that finalization and publication are one
	// atomic script on Redis Cluster too; all windowed counters of one
	// queue therefore live in one slot.
	Queue string
	// QueuePrefix is the queue's queue.Options.Prefix. Default
	// queue.DefaultPrefix.
	QueuePrefix string
}

// Windowed is a counter whose counts are kept per time window: each
// window is a counter of its own, flushed like any other to its own key,
// and finalized once after it closes by the holder of the rollup lease
// (see StartRollup). Get it from Engine.Windowed; the zero value is not
// usable. It is safe for concurrent use.
type Windowed struct {
	e     *Engine
	name  string
	size  int64 // ms
	queue string
	keys  windowKeys
	cur   atomic.Pointer[windowSlot]
	mu    sync.Mutex               // serializes window changes
	live  map[int64]*shard.Counter // guarded by mu; this process's windows by start
}

// window is a window counter's registration with its engine.
type window struct {
	reg     flush.Registration // added to the pending set by every flush of the counter
	retired bool               // out of the table: forget it once flushed
}

type windowSlot struct {
	start int64 // ms since the epoch
	c     *shard.Counter
}

// windowKeys are the keys a windowed counter and its rollup share: all in
// the slot of the queue's hash tag.
type windowKeys struct {
	queue   queue.Keys
	pending string // sorted set of windows to finalize, scored by end (ms)
	lease   string // lease.Options.KeyPrefix of the rollup lease
}

func (o WindowOptions) resolve(e *Engine) (WindowOptions, windowKeys, error) {
	if o.Size == 0 {
		o.Size = time.Minute
	}
	if o.Size < time.Millisecond {
		return o, windowKeys{}, &OptionError{"WindowOptions.Size", o.Size, "must be at least 1ms"}
	}
	k, err := windowKeysFor(e, o.QueuePrefix, o.Queue)
	if o.Queue == "" {
		o.Queue = DefaultWindowQueue
	}
	return o, k, err
}

func windowKeysFor(e *Engine, prefix, name string) (windowKeys, error) {
	if name == "" {
		name = DefaultWindowQueue
	}
	// queue.New validates the name and prefix; it does no I/O.
	q, err := queue.New(e.rdb, name, queue.Options{Prefix: prefix})
	if err != nil {
		return windowKeys{}, &OptionError{"Queue", name, err.Error()}
	}
	if strings.ContainsAny(e.opts.Namespace, "{}") {
		// A brace in the namespace would take over the window keys' hash
		// tag and split them from the queue's slot on Cluster.
		return windowKeys{}, &OptionError{"Namespace", e.opts.Namespace, "must not contain '{' or '}' when windowed counters are used"}
	}
	k := q.Keys()
	base := strings.TrimSuffix(k.Ready, "ready")
	return windowKeys{queue: k, pending: base + "windows:pending", lease: base + "rollup:"}, nil
}

// Windowed returns the windowed counter named name. Handles for one name
// and options share their counts.
func (e *Engine) Windowed(name string, opts WindowOptions) (*Windowed, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if e.state.Load() != open {
		return nil, ErrClosed
	}
	opts, keys, err := opts.resolve(e)
	if err != nil {
		return nil, err
	}
	return &Windowed{
		e: e, name: name, size: opts.Size.Milliseconds(), keys: keys,
		queue: opts.Queue,
		live:  make(map[int64]*shard.Counter),
	}, nil
}

// Name returns the counter's name.
func (w *Windowed) Name() string { return w.name }

// Size returns the window length.
func (w *Windowed) Size() time.Duration { return time.Duration(w.size) * time.Millisecond }

// Add adds delta to the window that contains the engine clock's now. It
// does no I/O: the window is registered for finalization by the flush
// that first writes it, in the same atomic step. After the engine is
// closed it drops delta and counts it in Stats.RejectedAdds.
func (w *Windowed) Add(delta int64) { w.AddAt(w.e.opts.Now(), delta) }

// AddAt adds delta to the window that contains t: for events that carry
// their own time. Like Add it does no I/O.
func (w *Windowed) AddAt(t time.Time, delta int64) {
	e := w.e
	if e.state.Load() != open {
		e.rejected.Add(1)
		return
	}
	start := windowStart(t, w.size)
	if s := w.cur.Load(); s != nil && s.start == start {
		s.c.Add(delta)
	} else {
		w.roll(start).Add(delta)
	}
	if e.state.Load() == sealed {
		e.rejected.Add(1) // see Counter.Add
	}
}

// Inc adds one.
func (w *Windowed) Inc() { w.Add(1) }

// Key returns the Redis key of the window that contains t.
func (w *Windowed) Key(t time.Time) string {
	return w.e.Key(windowCounterName(w.queue, w.name, w.size, windowStart(t, w.size)))
}

// Value returns the count of the window that contains t, as Counter.Value
// does: the Redis value plus this process's unflushed delta.
func (w *Windowed) Value(ctx context.Context, t time.Time) (int64, error) {
	return w.e.value(ctx, windowCounterName(w.queue, w.name, w.size, windowStart(t, w.size)), nil)
}

func windowStart(t time.Time, size int64) int64 {
	ms := t.UnixMilli()
	return ms - ((ms%size)+size)%size // floor, also before 1970
}

// windowCounterName is the counter name of a window: hash-tagged with its
// queue so it shares the slot of the queue and the pending set, and
// carrying the size, so that windows of one name and different sizes
// never share a key.
func windowCounterName(queue, name string, size, start int64) string {
	return "{" + queue + "}" + name + "@" + strconv.FormatInt(size, 10) + "ms@" + strconv.FormatInt(start, 10)
}

// roll makes start the current window. Its counter is registered with the
// engine, so that every flush of it carries its registration in the
// pending set (ZADD NX, atomic with the delta): a window with a count in
// Redis is always pending or finalized, whatever the outages.
func (w *Windowed) roll(start int64) *shard.Counter {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.live[start]
	if c == nil {
		e := w.e
		c = e.table.Get(windowCounterName(w.queue, w.name, w.size, start))
		c.Pin()
		w.live[start] = c
		e.mu.Lock()
		e.windows[c] = &window{reg: flush.Registration{
			Set:    w.keys.pending,
			Member: pendingMember(w.size, start, w.name),
			Score:  float64(start + w.size),
		}}
		// Forget windows long closed, keeping memory flat: their counters
		// leave the table (a late Add creates a new one), and their
		// registration goes once all they hold is in Redis (see
		// source.Settle).
		for s, old := range w.live {
			if s < start-keptWindows*w.size {
				delete(w.live, s)
				e.table.Delete(old.Name())
				e.windows[old].retired = true
				if old.Unflushed() == 0 {
					delete(e.windows, old)
				}
			}
		}
		e.mu.Unlock()
	}
	if s := w.cur.Load(); s == nil || s.start < start {
		w.cur.Store(&windowSlot{start: start, c: c})
	}
	return c
}

// pendingMember identifies a window in the pending set: size, start and
// name, from which the rollup rebuilds the key.
func pendingMember(size, start int64, name string) string {
	return strconv.FormatInt(size, 10) + ":" + strconv.FormatInt(start, 10) + ":" + name
}

func parsePendingMember(m string) (size, start int64, name string, err error) {
	a, rest, ok1 := strings.Cut(m, ":")
	b, name, ok2 := strings.Cut(rest, ":")
	size, err1 := strconv.ParseInt(a, 10, 64)
	start, err2 := strconv.ParseInt(b, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || size <= 0 {
		return 0, 0, "", fmt.Errorf("engine: malformed pending window %q", m)
	}
	return size, start, name, nil
}
