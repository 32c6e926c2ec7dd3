package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

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
	e      *Engine
	name   string
	size   int64 // ms
	tag    string
	keys   windowKeys
	cur    atomic.Pointer[windowSlot]
	mu     sync.Mutex         // serializes window changes
	regist map[int64]struct{} // guarded by mu; windows registered by this process
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
	if e.closed.Load() {
		return nil, ErrClosed
	}
	opts, keys, err := opts.resolve(e)
	if err != nil {
		return nil, err
	}
	return &Windowed{
		e: e, name: name, size: opts.Size.Milliseconds(), keys: keys,
		tag:    "{" + opts.Queue + "}",
		regist: make(map[int64]struct{}),
	}, nil
}

// Name returns the counter's name.
func (w *Windowed) Name() string { return w.name }

// Size returns the window length.
func (w *Windowed) Size() time.Duration { return time.Duration(w.size) * time.Millisecond }

// Add adds delta to the window that contains the engine clock's now. It
// does no I/O; the first Add to a new window in this process starts a
// goroutine that registers the window for finalization (one ZADD). After
// the engine is closed it drops delta and counts it in Stats.RejectedAdds.
func (w *Windowed) Add(delta int64) { w.AddAt(w.e.opts.Now(), delta) }

// AddAt adds delta to the window that contains t: for events that carry
// their own time. Like Add it does no I/O.
func (w *Windowed) AddAt(t time.Time, delta int64) {
	if w.e.closed.Load() {
		w.e.rejected.Add(1)
		return
	}
	start := windowStart(t, w.size)
	if s := w.cur.Load(); s != nil && s.start == start {
		s.c.Add(delta)
		return
	}
	w.roll(start).Add(delta)
}

// Inc adds one.
func (w *Windowed) Inc() { w.Add(1) }

// Key returns the Redis key of the window that contains t.
func (w *Windowed) Key(t time.Time) string {
	return w.e.Key(w.counterName(windowStart(t, w.size)))
}

// Value returns the count of the window that contains t, as Counter.Value
// does: the Redis value plus this process's unflushed delta.
func (w *Windowed) Value(ctx context.Context, t time.Time) (int64, error) {
	return w.e.value(ctx, w.e.table.Get(w.counterName(windowStart(t, w.size))))
}

func windowStart(t time.Time, size int64) int64 {
	ms := t.UnixMilli()
	return ms - ((ms%size)+size)%size // floor, also before 1970
}

func (w *Windowed) counterName(start int64) string {
	return w.tag + w.name + "@" + strconv.FormatInt(start, 10)
}

// roll makes start the current window and registers it once per process.
func (w *Windowed) roll(start int64) *shard.Counter {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.e.table.Get(w.counterName(start))
	if s := w.cur.Load(); s == nil || s.start < start {
		w.cur.Store(&windowSlot{start: start, c: c})
	}
	if _, ok := w.regist[start]; !ok {
		w.regist[start] = struct{}{}
		// Forget windows long closed, keeping memory flat: their
		// counters leave the table (a late Add creates a new one; the old
		// one still flushes whatever it holds).
		for s := range w.regist {
			if s < start-keptWindows*w.size {
				delete(w.regist, s)
				w.e.table.Delete(w.counterName(s))
			}
		}
		go w.register(start)
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

// register adds the window to the pending set (ZADD NX, scored by its end)
// so that the rollup finds it, retrying until it succeeds or the window
// has been closed for a minute. A window no process registered is never
// finalized; Options.OnError hears of the failure.
func (w *Windowed) register(start int64) {
	member := pendingMember(w.size, start, w.name)
	end := start + w.size
	giveUp := time.UnixMilli(end).Add(time.Minute)
	backoff := 10 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), w.e.opts.FlushTimeout)
		err := w.e.rdb.ZAddNX(ctx, w.keys.pending, redis.Z{Score: float64(end), Member: member}).Err()
		cancel()
		if err == nil {
			return
		}
		if w.e.opts.Now().After(giveUp) {
			if w.e.opts.OnError != nil {
				w.e.opts.OnError(fmt.Errorf("engine: register window %s: %w", member, err))
			}
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}
