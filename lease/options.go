package lease

import (
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
)

// DefaultKeyPrefix is the key prefix used when Options.KeyPrefix is empty:
// a lease named "rollup" lives at "abacus:lease:{rollup}".
const DefaultKeyPrefix = "abacus:lease:"

// MaxNameLen is the longest lease name accepted, in bytes: the same for
// every abacus name.
const MaxNameLen = invalid.MaxNameLen

// Defaults applied to zero Options fields.
const (
	// DefaultMinRetryDelay is the first backoff step of Acquire.
	DefaultMinRetryDelay = 4 * time.Millisecond
	// DefaultMaxRetryDelay caps Acquire's backoff.
	DefaultMaxRetryDelay = 256 * time.Millisecond
	// DefaultReplicaTimeout bounds the WAIT for replicas.
	DefaultReplicaTimeout = time.Second
)

// Options configures one acquisition. The zero value means "all defaults":
// no auto-renewal, the default key prefix, and WAIT for one replica when
// the lease's master has one. Invalid values make Acquire and TryAcquire
// return an [*InvalidError].
type Options struct {
	// KeyPrefix is prepended to the hash-tagged name to form the lease's
	// Redis keys. Default DefaultKeyPrefix ("abacus:lease:").
	KeyPrefix string

	// AutoRenew starts a watchdog that refreshes the lease every
	// RenewInterval until it is released or lost. Without it the lease
	// ends TTL minus SafetyMargin after acquisition unless Refresh is called.
	AutoRenew bool

	// RenewInterval is the watchdog's period. Default a third of the TTL.
	// It must be positive and less than TTL minus SafetyMargin.
	RenewInterval time.Duration

	// SafetyMargin is subtracted from the TTL to get the local deadline, to
	// absorb clock-rate differences and timer latency. Default TTL/100 +
	// 2ms (the Redlock drift allowance). It must be non-negative and less
	// than the TTL.
	SafetyMargin time.Duration

	// MinRetryDelay is Acquire's first backoff step; each retry doubles the
	// step up to MaxRetryDelay and sleeps a uniformly random part of it
	// (full jitter). Defaults DefaultMinRetryDelay and DefaultMaxRetryDelay;
	// MaxRetryDelay must not be less than MinRetryDelay.
	MinRetryDelay time.Duration
	// MaxRetryDelay caps Acquire's backoff step. See MinRetryDelay.
	MaxRetryDelay time.Duration

	// Replicas is how many replicas must acknowledge an acquisition or a
	// refresh (WAIT, in the same round trip and on the same connection)
	// before it counts, so that a failover to one of them keeps the lease,
	// its expiry and its fence. An acquisition fewer acknowledge within
	// ReplicaTimeout is released and fails with ErrNotReplicated (Acquire
	// retries it); such a refresh returns ErrNotReplicated and leaves the
	// local deadline where it was.
	//
	// Default 0, "auto": one replica if the lease's master has one or had
	// one within repl-backlog-ttl (1 h by default: an old master just after
	// a failover still counts), none otherwise. The scripts find out
	// themselves (INFO replication, no extra round trip on a single Redis);
	// on a replicated master that costs one round trip per Acquire call,
	// after which its attempts, the lease's refreshes and the rest of a
	// Hold loop wait at once. A positive value waits for that many replicas
	// from the start; -1 (any negative value, not 0) never waits.
	Replicas int
	// Logger, when not nil, receives the lease's lifecycle events: the
	// watchdog's renewals failing (Warn, at the first failure of a spell,
	// not per retry) and recovering (Info, with how many failed and for how
	// long), the lease lost or expired (Warn), and, in Hold, each
	// acquisition and release (Info). Default none.
	Logger *slog.Logger

	// ReplicaTimeout bounds the WAIT. Default DefaultReplicaTimeout (1s).
	// Keep it below the client's ReadTimeout (go-redis default 3s), which
	// bounds the whole round trip.
	ReplicaTimeout time.Duration
}

// config is a validated Options with defaults applied, plus the arguments.
type config struct {
	Options
	name     string
	ttl      time.Duration
	key      string
	fenceKey string
	repl     *replication // shared by copies: the lease remembers what Acquire learned
}

// resolve validates the arguments and applies defaults to a copy of o.
func (o Options) resolve(rdb redis.UniversalClient, name string, ttl time.Duration) (config, error) {
	if err := invalid.Client(ErrInvalid, rdb); err != nil {
		return config{}, err
	}
	if err := invalid.Name(ErrInvalid, "name", name); err != nil {
		return config{}, err
	}
	if ttl < time.Millisecond {
		// PX has millisecond resolution; a smaller TTL would round to 0.
		return config{}, invalid.New(ErrInvalid, "ttl", ttl, "must be at least 1ms")
	}
	if err := invalid.NonNegative(ErrInvalid, "Options", o, "Replicas"); err != nil {
		return config{}, err
	}
	if o.SafetyMargin < 0 || o.SafetyMargin >= ttl {
		return config{}, invalid.New(ErrInvalid, "Options.SafetyMargin", o.SafetyMargin, "must be in [0, ttl)")
	}
	// PX takes whole milliseconds; the local deadline must use the TTL that
	// Redis will apply, never a longer one.
	ttl = ttl.Truncate(time.Millisecond)
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.SafetyMargin == 0 {
		o.SafetyMargin = min(ttl/100+2*time.Millisecond, ttl/2)
	}
	if o.RenewInterval == 0 {
		o.RenewInterval = ttl / 3
	}
	if o.RenewInterval >= ttl-o.SafetyMargin {
		return config{}, invalid.New(ErrInvalid, "Options.RenewInterval", o.RenewInterval, "must be less than ttl minus SafetyMargin")
	}
	if o.MinRetryDelay == 0 {
		o.MinRetryDelay = DefaultMinRetryDelay
	}
	if o.MaxRetryDelay == 0 {
		o.MaxRetryDelay = max(DefaultMaxRetryDelay, o.MinRetryDelay)
	}
	if o.MaxRetryDelay < o.MinRetryDelay {
		return config{}, invalid.New(ErrInvalid, "Options.MaxRetryDelay", o.MaxRetryDelay, "must not be less than MinRetryDelay")
	}
	if o.ReplicaTimeout == 0 {
		o.ReplicaTimeout = DefaultReplicaTimeout
	}
	key, fenceKey := Keys(o.KeyPrefix, name)
	return config{Options: o, name: name, ttl: ttl, key: key, fenceKey: fenceKey, repl: newReplication(o.Replicas)}, nil
}

// Keys returns the Redis keys of the lease named name under prefix (the
// default prefix when empty): the lease key and its fence counter. Both
// carry the hash tag {name}, so they are in one Redis Cluster slot.
func Keys(prefix, name string) (key, fenceKey string) {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	key = prefix + "{" + name + "}"
	return key, key + ":fence"
}
