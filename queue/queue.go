package queue

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/internal/replicas"
)

// Queue is a reliable work queue kept in Redis lists. Create it with New;
// the zero value is not usable. It is safe for concurrent use, and a Queue
// value holds no connections or goroutines of its own: Consume and Drain
// start what they need and stop it before they return.
type Queue struct {
	rdb      redis.UniversalClient
	name     string
	opts     Options
	keys     Keys
	replicas *replicas.Policy // from Options.Replicas
	logger   *slog.Logger     // Options.Logger with the queue's name, or nil

	// Auto mode (see want).
}

// Keys are the Redis keys of one queue. Each contains the hash tag
// {name}, so all of them are in one Redis Cluster slot.
type Keys struct {
	// Ready is the list of messages waiting for a consumer. Push adds to
	// its left end; consumers take from its right end.
	Ready string
	// Dead is the dead-letter list: messages that failed MaxAttempts times
	// or were malformed, newest at the left.
	Dead string
	// Attempts is a hash from message ID to its failed deliveries so far.
	Attempts string
	// Consumers is a sorted set of registered consumer IDs (score 0 while
	// believed alive, else the Redis time in ms they were found dead).
	Consumers string
	// Drain is the Drain owner's processing list.
	Drain string
	// LeasePrefix is the lease.Options.KeyPrefix of the queue's leases
	// (consumers, reclaimer, Drain); it carries the queue's hash tag.
	LeasePrefix string

	proc string // prefix of consumer processing lists
}

// KeysFor returns the keys of the queue called name under prefix (the
// default prefix when empty), without validating them.
func KeysFor(prefix, name string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	base := prefix + "{" + name + "}:"
	return Keys{
		Ready:       base + "ready",
		Dead:        base + "dead",
		Attempts:    base + "attempts",
		Consumers:   base + "consumers",
		Drain:       base + "drain",
		LeasePrefix: base + "lease:",
		proc:        base + "proc:",
	}
}

// Processing returns the processing list of the consumer with the given ID.
func (k Keys) Processing(consumer string) string { return k.proc + consumer }

// New returns the queue called name, kept in Redis through rdb (a
// *redis.Client, *redis.ClusterClient or failover client). It does no I/O.
// It returns an [*InvalidError] for a nil client or a *redis.Ring, an empty name, a name
// with '{' or '}', or a bad Options field (including a ReplicaTimeout not
// below the client's ReadTimeout).
func New(rdb redis.UniversalClient, name string, opts Options) (*Queue, error) {
	if err := invalid.Client(ErrInvalid, rdb); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	o, err := opts.resolve()
	if err == nil {
		o, err = o.withClient(rdb)
	}
	if err != nil {
		return nil, err
	}
	q := &Queue{rdb: rdb, name: name, opts: o, keys: KeysFor(o.Prefix, name), replicas: replicas.New(o.Replicas)}
	if o.Logger != nil {
		q.logger = o.Logger.With("queue", name)
	}
	return q, nil
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// Keys returns the queue's Redis keys.
func (q *Queue) Keys() Keys { return q.keys }

// Options returns the queue's options with defaults applied.
func (q *Queue) Options() Options { return q.opts }

// Stats is a snapshot of a queue's lists.
type Stats struct {
	Ready      int64 // messages waiting
	Processing int64 // messages held by consumers (registered ones) and Drain
	Dead       int64 // messages in the dead-letter list
	Consumers  int64 // registered consumers, dead ones not yet retired included
}

// Stats reads the lengths of the queue's lists: a few round trips, not
// atomic with respect to consumers.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	ids, err := q.rdb.ZRange(ctx, q.keys.Consumers, 0, -1).Result()
	if err != nil {
		return st, fmt.Errorf("queue %q: stats: %w", q.name, err)
	}
	pipe := q.rdb.Pipeline()
	ready := pipe.LLen(ctx, q.keys.Ready)
	dead := pipe.LLen(ctx, q.keys.Dead)
	drain := pipe.LLen(ctx, q.keys.Drain)
	procs := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		procs[i] = pipe.LLen(ctx, q.keys.Processing(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return st, fmt.Errorf("queue %q: stats: %w", q.name, err)
	}
	st.Ready, st.Dead, st.Processing, st.Consumers = ready.Val(), dead.Val(), drain.Val(), int64(len(ids))
	for _, p := range procs {
		st.Processing += p.Val()
	}
	return st, nil
}
