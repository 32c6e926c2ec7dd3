package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/lease"
	"github.com/abacus-go/abacus/queue"
	"github.com/abacus-go/abacus/serial"
)

// namespace is the first part of every metric name.
const namespace = "abacus"

// DefaultQueueTimeout is Options.QueueTimeout's default.
const DefaultQueueTimeout = 2 * time.Second

// Options name what a Collector exports. Nil and empty fields export
// nothing; the zero value gives a Collector that exports nothing.
type Options struct {
	// Engine is the engine whose Stats are exported, unlabelled.
	Engine *engine.Engine
	// Serials are allocators to export, labelled serial with their keys,
	// which must differ.
	Serials []*serial.Allocator
	// Leases are leases to export, labelled lease with their names, which
	// must differ. A lease's figures stay exported after it ends, with
	// abacus_lease_held 0.
	Leases []*lease.Lease
	// Queues are queues to export, labelled queue with their names, which
	// must differ. Their lengths are read from Redis at each collection.
	Queues []*queue.Queue
	// QueueTimeout bounds the Redis reads of one collection (the queues'
	// lengths, a few round trips per queue). Default DefaultQueueTimeout
	// (2s); keep it below the scrape timeout (Prometheus' default 10s).
	QueueTimeout time.Duration
}

// Collector is a prometheus.Collector for the values named in its
// Options. Create it with New and register it with a
// prometheus.Registerer. It is safe for concurrent use.
type Collector struct {
	parts        []part
	queueTimeout time.Duration
}

var _ prometheus.Collector = (*Collector)(nil)

// part exports one observed value. Its collect does I/O only with ctx.
type part interface {
	describe(ch chan<- *prometheus.Desc)
	collect(ctx context.Context, ch chan<- prometheus.Metric)
}

// New returns a Collector for what opts names. It returns an
// *InvalidError for a nil entry in a list, two entries with the same
// label, or a negative QueueTimeout.
func New(opts Options) (*Collector, error) {
	if opts.QueueTimeout < 0 {
		return nil, invalid.New(ErrInvalid, "Options.QueueTimeout", opts.QueueTimeout, "must not be negative (zero means the default)")
	}
	if opts.QueueTimeout == 0 {
		opts.QueueTimeout = DefaultQueueTimeout
	}
	c := &Collector{queueTimeout: opts.QueueTimeout}
	if opts.Engine != nil {
		c.parts = append(c.parts, engineStats(opts.Engine))
	}
	err := addEach(c, "Serials", "key", opts.Serials, (*serial.Allocator).Key, serialStats)
	if err == nil {
		err = addEach(c, "Leases", "name", opts.Leases, (*lease.Lease).Name, leaseStats)
	}
	if err == nil {
		err = addEach(c, "Queues", "name", opts.Queues, (*queue.Queue).Name, newQueueStats)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// addEach adds a part made by newPart for every value in list, checking
// that none is nil and that their labels (what label returns, called
// what) differ.
func addEach[T comparable](c *Collector, field, what string, list []T, label func(T) string, newPart func(T) part) error {
	var zero T
	seen := map[string]bool{}
	for i, v := range list {
		if v == zero {
			return invalid.New(ErrInvalid, fmt.Sprintf("Options.%s[%d]", field, i), nil, "must not be nil")
		}
		l := label(v)
		if seen[l] {
			return invalid.New(ErrInvalid, fmt.Sprintf("Options.%s[%d]", field, i), l, fmt.Sprintf("has the %s of an earlier entry", what))
		}
		seen[l] = true
		c.parts = append(c.parts, newPart(v))
	}
	return nil
}

// Register creates a Collector for what opts names and registers it with
// reg: pass your registry, never a global one you do not own.
func Register(reg prometheus.Registerer, opts Options) (*Collector, error) {
	c, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("metrics: register: %w", err)
	}
	return c, nil
}

// Describe sends the descriptors of every metric c exports, with their
// constant labels. It implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, p := range c.parts {
		p.describe(ch)
	}
}

// Collect reads the Stats of every observed value and sends them as
// metrics, waiting at most Options.QueueTimeout for Redis. It implements
// prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.queueTimeout)
	defer cancel()
	for _, p := range c.parts {
		p.collect(ctx, ch)
	}
}
