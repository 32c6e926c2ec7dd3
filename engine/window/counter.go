package window

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/invalid"
)

// DefaultGroup is the group of windowed counters and rollups whose
// Options leave Group empty.
const DefaultGroup = "abacus-windows"

// keptWindows is how many windows back a Counter keeps its engine
// counters in memory; older ones are forgotten when a new window starts
// (a late Add creates one again).
const keptWindows = 16

// ErrInvalid is wrapped by every *InvalidError of this package.
var ErrInvalid = errors.New("window: invalid argument")

// InvalidError reports an invalid argument or option. It wraps ErrInvalid
// and is the same type as every abacus package's InvalidError.
type InvalidError = invalid.Error

// Options configure a windowed counter. The zero value gives the defaults
// noted on each field.
type Options struct {
	// Size is the length of one window; windows start at multiples of
	// Size since the Unix epoch. Default one minute; at least 1ms.
	Size time.Duration
	// Group names the set of windows one rollup finalizes (see
	// RollupOptions.Group). Default DefaultGroup. The window keys carry
	// the group as their hash tag, so that a window and its registration
	// are one atomic write on Redis Cluster too; all windows of a group
	// therefore live in one slot.
	Group string
}

// Counter counts per time window: each window is an engine counter of its
// own, flushed like any other to its own key, and finalized once after it
// closes by the holder of its group's rollup lease (see StartRollup). Get
// it from New; the zero value is not usable. It is safe for concurrent
// use.
type Counter struct {
	e     *engine.Engine
	name  string
	size  int64 // ms
	group group
	cur   atomic.Pointer[current]
	mu    sync.Mutex                // serializes window changes
	live  map[int64]*engine.Counter // guarded by mu; this process's windows by start
}

type current struct {
	start int64 // ms since the epoch
	c     *engine.Counter
}

// group is what a group's windows and its rollup share: the name, and the
// set of windows pending finalization, in the slot of the group's hash tag.
type group struct {
	name    string
	pending string
}

func newGroup(e *engine.Engine, name string) (group, error) {
	if name == "" {
		name = DefaultGroup
	}
	if err := invalid.Name(ErrInvalid, "Group", name); err != nil {
		return group{}, err
	}
	if strings.ContainsAny(name, "{}") {
		return group{}, invalid.New(ErrInvalid, "Group", name, "must not contain '{' or '}': it is the hash tag of the window keys")
	}
	if ns := e.Options().Namespace; strings.ContainsAny(ns, "{}") {
		// A brace in the namespace would take over the window keys' hash
		// tag and split them from the pending set's slot on Cluster.
		return group{}, invalid.New(ErrInvalid, "engine Namespace", ns, "must not contain '{' or '}' when windowed counters are used")
	}
	return group{name: name, pending: e.Key("{" + name + "}windows:pending")}, nil
}

// counterName is the engine counter name of a window: hash-tagged with
// its group so it shares the slot of the pending set, and carrying the
// size, so that windows of one name and different sizes never share a key.
func (g group) counterName(name string, size, start int64) string {
	return "{" + g.name + "}" + name + "@" + strconv.FormatInt(size, 10) + "ms@" + strconv.FormatInt(start, 10)
}

// New returns the windowed counter named name, counting in e. Counters of
// one name and Options share their counts.
func New(e *engine.Engine, name string, opts Options) (*Counter, error) {
	if e == nil {
		return nil, invalid.New(ErrInvalid, "engine", nil, "an engine is required")
	}
	if err := invalid.Name(ErrInvalid, "name", name); err != nil {
		return nil, err
	}
	if opts.Size == 0 {
		opts.Size = time.Minute
	}
	if opts.Size < time.Millisecond {
		return nil, invalid.New(ErrInvalid, "Options.Size", opts.Size, "must be at least 1ms")
	}
	g, err := newGroup(e, opts.Group)
	if err != nil {
		return nil, err
	}
	// A window's counter name adds the group and the window to name; the
	// longest (a start of 20 digits) must be a valid counter name, or Adds
	// to the window would be refused with nobody to tell.
	if n := len(g.counterName(name, opts.Size.Milliseconds(), math.MinInt64)); n > engine.MaxNameLen {
		return nil, invalid.New(ErrInvalid, "name", name, "with the group and the window it makes counter names of up to "+
			strconv.Itoa(n)+" bytes; at most "+strconv.Itoa(engine.MaxNameLen)+" are allowed")
	}
	return &Counter{e: e, name: name, size: opts.Size.Milliseconds(), group: g, live: make(map[int64]*engine.Counter)}, nil
}

// Name returns the counter's name.
func (w *Counter) Name() string { return w.name }

// Size returns the window length.
func (w *Counter) Size() time.Duration { return time.Duration(w.size) * time.Millisecond }

// Add adds delta to the current window. Like engine.Counter.Add it does
// no I/O: the window is registered for finalization by the flush that
// first writes it. After the engine is closed it drops delta and counts it
// in the engine's Stats.RejectedAdds.
func (w *Counter) Add(delta int64) { w.AddAt(time.Now(), delta) }

// Inc adds one to the current window.
func (w *Counter) Inc() { w.Add(1) }

// AddAt adds delta to the window that contains t: for events that carry
// their own time. Like Add it does no I/O.
func (w *Counter) AddAt(t time.Time, delta int64) {
	start := windowStart(t, w.size)
	if cur := w.cur.Load(); cur != nil && cur.start == start {
		cur.c.Add(delta)
		return
	}
	c, err := w.roll(start)
	if err != nil {
		// The engine is closed: let it count the rejected Add.
		w.e.Add(w.counterName(start), delta)
		return
	}
	c.Add(delta)
}

// Key returns the Redis key of the window that contains t.
func (w *Counter) Key(t time.Time) string {
	return w.e.Key(w.counterName(windowStart(t, w.size)))
}

// Value returns the count of the window that contains t, as
// engine.Counter.Value does: the Redis value plus this process's
// unflushed delta.
func (w *Counter) Value(ctx context.Context, t time.Time) (int64, error) {
	return w.e.Value(ctx, w.counterName(windowStart(t, w.size)))
}

func (w *Counter) counterName(start int64) string {
	return w.group.counterName(w.name, w.size, start)
}

func windowStart(t time.Time, size int64) int64 {
	ms := t.UnixMilli()
	return ms - ((ms%size)+size)%size // floor, also before 1970
}

// roll returns the engine counter of the window at start, making it the
// current window unless a later one is. The counter carries its
// registration in the pending set, which every flush of it writes in the
// same atomic step as its delta (ZADD NX): a window with a count in Redis
// is always pending or finalized.
func (w *Counter) roll(start int64) (*engine.Counter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.live[start]
	if c == nil {
		var err error
		c, err = w.e.CounterWith(w.counterName(start), engine.CounterOptions{Register: &flush.Registration{
			Set:    w.group.pending,
			Member: pendingMember(w.size, start, w.name),
			Score:  float64(start + w.size),
		}})
		if err != nil {
			return nil, err
		}
		w.live[start] = c
		// Forget windows long closed, keeping memory flat: their counters
		// leave the engine's table once what they hold is flushed.
		for s, old := range w.live {
			if s < start-keptWindows*w.size {
				delete(w.live, s)
				w.e.Forget(old.Name())
			}
		}
	}
	if cur := w.cur.Load(); cur == nil || cur.start < start {
		w.cur.Store(&current{start: start, c: c})
	}
	return c, nil
}
