package engine

import (
	"context"

	"github.com/abacus-go/abacus/shard"
)

// Counter is a handle on a named counter. Get it from Engine.Counter; the
// zero value is not usable. It is safe for concurrent use.
type Counter struct {
	e *Engine
	c *shard.Counter
}

// Name returns the counter's name.
func (c *Counter) Name() string { return c.c.Name() }

// Add adds delta (which may be negative). It never blocks, allocates or
// does I/O. After the engine is closed it drops delta and counts the call
// in Stats.RejectedAdds.
func (c *Counter) Add(delta int64) {
	if c.e.state.Load() != open {
		c.e.rejected.Add(1)
		return
	}
	c.c.Add(delta)
	if c.e.state.Load() == sealed {
		// Close ended between the check and the add: nothing will flush
		// delta, so the call counts as rejected.
		c.e.rejected.Add(1)
	}
}

// Inc adds one.
func (c *Counter) Inc() { c.Add(1) }

// Value returns the counter's value in Redis plus this process's deltas
// not yet written there, so a process always reads its own writes. The
// Redis value may be reused for up to Options.MaxReadAge; concurrent reads
// of one counter share one round trip.
func (c *Counter) Value(ctx context.Context) (int64, error) {
	return c.e.value(ctx, c.c.Name(), c.c)
}

// Value returns the value of the counter named name; see Counter.Value.
// It does not create a counter: reading a name never added to costs one
// Redis read (cached like any other) and no memory in the table.
func (e *Engine) Value(ctx context.Context, name string) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	return e.value(ctx, name, nil)
}
