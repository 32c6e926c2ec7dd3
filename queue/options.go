package queue

import (
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
)

// DefaultPrefix is the key prefix used when Options.Prefix is empty: queue
// "jobs" keeps its ready list at "abacus:queue:{jobs}:ready".
const DefaultPrefix = "abacus:queue:"

// MaxNameLen is the longest queue name accepted, in bytes: the same for
// every abacus name.
const MaxNameLen = invalid.MaxNameLen

// Defaults applied to zero Options fields.
const (
	// DefaultMaxMessageBytes is the default limit on a message body: 512 KiB.
	DefaultMaxMessageBytes = 512 << 10
	// MaxMessageBytesLimit is the largest Options.MaxMessageBytes accepted:
	// a Redis string holds at most 512 MiB, header included.
	MaxMessageBytesLimit = 512<<20 - headerLen
	// DefaultPushBatch is the default number of messages per LPUSH.
	DefaultPushBatch = 512
	// DefaultPrefetch is the default number of messages a consumer moves
	// per round trip when the queue is busy.
	DefaultPrefetch = 32
	// DefaultMaxAttempts is the default number of deliveries before a
	// message goes to the dead-letter list.
	DefaultMaxAttempts = 5
	// DefaultLeaseTTL is the default TTL of consumer, reclaimer and Drain
	// leases.
	DefaultLeaseTTL = 5 * time.Second
	// DefaultBlockTimeout is how long an idle consumer's BLMOVE waits.
	DefaultBlockTimeout = time.Second
	// DefaultRetireAfter is how long a dead consumer stays registered.
	DefaultRetireAfter = time.Minute
	// DefaultReplicaTimeout bounds the WAIT for replicas.
	DefaultReplicaTimeout = time.Second
)

// Options configures a Queue. The zero value means "all defaults"; New
// returns an [*InvalidError] for a negative or out-of-range field.
type Options struct {
	// Prefix is prepended to every key of the queue. Default DefaultPrefix
	// ("abacus:queue:"). It must not contain '{' or '}': the queue's keys
	// carry the hash tag {name}.
	Prefix string

	// MaxMessageBytes limits a message body. Default
	// DefaultMaxMessageBytes (512 KiB); at most MaxMessageBytesLimit.
	MaxMessageBytes int

	// PushBatch is the most messages sent in one LPUSH; a Push of more
	// sends several LPUSHes in one pipeline. Default DefaultPushBatch (512).
	PushBatch int

	// Prefetch is the most messages a consumer takes in one round trip
	// (one Lua script). They sit in its processing list until
	// handled, so a crash redelivers up to Prefetch messages. Default
	// DefaultPrefetch (32); 1 means one message at a time.
	Prefetch int

	// Concurrency is the number of consumers one Consume call runs, each
	// with its own heartbeat lease and processing list. Default 1.
	Concurrency int

	// MaxAttempts is the number of failed deliveries (handler errors,
	// panics, or crashes of the consumer holding the message) after which a
	// message moves to the dead-letter list. Default DefaultMaxAttempts (5).
	MaxAttempts int

	// LeaseTTL is the TTL of consumer heartbeat leases (renewed every
	// third of it), of the reclaimer lease and of the Drain lease. A
	// crashed consumer's messages return to the ready list about one
	// LeaseTTL plus one ReclaimInterval after the crash. Default
	// DefaultLeaseTTL (5s); at least 10ms.
	LeaseTTL time.Duration

	// BlockTimeout is how long an idle consumer's BLMOVE waits before it
	// checks its context and lease again, and so how long Consume may take
	// to return after its context ends. Default DefaultBlockTimeout (1s);
	// at least 1ms. Below 1s it must also be below the client's
	// ReadTimeout, since go-redis applies its blocking-command allowance
	// only to whole seconds.
	BlockTimeout time.Duration

	// ReclaimInterval is how often the reclaimer looks for dead consumers.
	// Default LeaseTTL/2.
	ReclaimInterval time.Duration

	// RetireAfter is how long a dead consumer stays registered after its
	// lease ended, so that a move it sent just before dying is still
	// reclaimed. It must exceed BlockTimeout. Default DefaultRetireAfter
	// (1m).
	RetireAfter time.Duration

	// Replicas is how many replicas must acknowledge a Push (WAIT, in the
	// same round trip) before it returns nil, and a consumer's or Drain's
	// take before its messages reach the handler; the queue's leases get
	// the same setting. Default 0, "auto": none until the queue's master is
	// seen with a replica, or with a replication backlog (it had one within
	// repl-backlog-ttl), asking it on the first write and then at most every
	// 5s; one from then on, even while none is connected, since a failover
	// in progress looks just like that. So a deployment with a replica
	// loses no pushed message in a failover without configuration, and one
	// without pays nothing. A positive value is a fixed count; -1 (any
	// negative value) never waits. See [ReplicationError] for what a
	// shortfall does.
	Replicas int

	// ReplicaTimeout bounds each WAIT. Default DefaultReplicaTimeout (1s),
	// or half the client's ReadTimeout if that is shorter than 2s; at least
	// 1ms. Unless Replicas is negative it must be below the ReadTimeout,
	// which the WAIT reply is read with (a timed-out read would make
	// go-redis resend the pipeline).
	ReplicaTimeout time.Duration

	// OnError, when set, receives errors from background work (consumer
	// Redis errors that are retried, the reclaimer) from the goroutine that
	// met them. Default: dropped.
	OnError func(error)

	// Logger, when not nil, receives the queue's lifecycle events, each
	// with the queue's name: a consumer or Drain owner failing and backing
	// off (Warn) and recovering (Info, with how many failures and for how
	// long), once per spell of each consumer goroutine or Drain owner, not
	// per retry (an outage met by Concurrency consumers logs as many
	// spells); a dead consumer's messages
	// reclaimed (Warn); a Drain owner fenced off (Warn); a malformed entry
	// dead-lettered (Warn). The queue's leases (consumers, reclaimer,
	// Drain) log through it too (see lease.Options.Logger): one lost or
	// expired (Warn), its renewals failing and recovering (Warn, Info: once
	// per spell of each lease, not per retry), the reclaimer lease
	// acquired and released (Info). Default none.
	Logger *slog.Logger
}

// resolve validates o and returns a copy with defaults applied.
func (o Options) resolve() (Options, error) {
	if err := invalid.NonNegative(ErrInvalid, "Options", o, "Replicas"); err != nil {
		return o, err
	}
	type intField struct {
		name string
		v    *int
		def  int
	}
	for _, f := range []intField{
		{"Options.MaxMessageBytes", &o.MaxMessageBytes, DefaultMaxMessageBytes},
		{"Options.PushBatch", &o.PushBatch, DefaultPushBatch},
		{"Options.Prefetch", &o.Prefetch, DefaultPrefetch},
		{"Options.Concurrency", &o.Concurrency, 1},
		{"Options.MaxAttempts", &o.MaxAttempts, DefaultMaxAttempts},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if o.MaxMessageBytes > MaxMessageBytesLimit {
		return o, invalid.New(ErrInvalid, "Options.MaxMessageBytes", o.MaxMessageBytes, "over MaxMessageBytesLimit")
	}
	type durField struct {
		name string
		v    *time.Duration
		def  time.Duration
		min  time.Duration
	}
	for _, f := range []durField{
		{"Options.LeaseTTL", &o.LeaseTTL, DefaultLeaseTTL, 10 * time.Millisecond},
		{"Options.BlockTimeout", &o.BlockTimeout, DefaultBlockTimeout, time.Millisecond},
		{"Options.ReclaimInterval", &o.ReclaimInterval, o.LeaseTTL / 2, time.Millisecond},
		{"Options.RetireAfter", &o.RetireAfter, DefaultRetireAfter, time.Millisecond},
	} {
		if *f.v == 0 {
			*f.v = f.def
			if f.name == "Options.ReclaimInterval" {
				*f.v = o.LeaseTTL / 2 // LeaseTTL has its default by now
			}
		}
		if *f.v < f.min {
			return o, invalid.New(ErrInvalid, f.name, *f.v, "must be at least "+f.min.String())
		}
	}
	if o.RetireAfter <= o.BlockTimeout {
		return o, invalid.New(ErrInvalid, "Options.RetireAfter", o.RetireAfter, "must exceed BlockTimeout")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return o, invalid.New(ErrInvalid, "Options.Prefix", o.Prefix, "must not contain '{' or '}'")
	}
	return o, nil
}

// withClient applies what depends on the client: the default
// ReplicaTimeout, and its check against the client's ReadTimeout.
func (o Options) withClient(rdb redis.UniversalClient) (Options, error) {
	var rt time.Duration // 0: unknown or unlimited
	switch c := rdb.(type) {
	case *redis.Client:
		rt = c.Options().ReadTimeout
	case *redis.ClusterClient:
		rt = c.Options().ReadTimeout
	}
	switch {
	case o.ReplicaTimeout == 0:
		o.ReplicaTimeout = DefaultReplicaTimeout
		if rt > 0 {
			o.ReplicaTimeout = max(min(o.ReplicaTimeout, rt/2), time.Millisecond)
		}
	case o.ReplicaTimeout < time.Millisecond:
		return o, invalid.New(ErrInvalid, "Options.ReplicaTimeout", o.ReplicaTimeout, "must be at least 1ms")
	}
	if o.Replicas >= 0 && rt > 0 && o.ReplicaTimeout >= rt {
		return o, invalid.New(ErrInvalid, "Options.ReplicaTimeout", o.ReplicaTimeout,
			"must be below the client's ReadTimeout ("+rt.String()+")")
	}
	return o, nil
}

// checkName validates a queue name.
func checkName(name string) error {
	if err := invalid.Name(ErrInvalid, "name", name); err != nil {
		return err
	}
	switch {
	case strings.ContainsAny(name, "{}"):
		return invalid.New(ErrInvalid, "name", name, "must not contain '{' or '}' (it becomes the hash tag)")
	}
	return nil
}
