package engine

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/invalid"
)

// MaxNameLen is the longest counter name accepted, in bytes: the same for
// every abacus name.
const MaxNameLen = invalid.MaxNameLen

// Options configure an Engine. The zero value gives the defaults noted on
// each field; invalid values make New return an *InvalidError.
type Options struct {
	// FlushInterval between background flushes. Default 100ms. Lower
	// means fresher Redis values and more Redis commands; see
	// `go run ./bench tune`.
	FlushInterval time.Duration
	// Namespace prefixes every Redis key: counter "pv" is stored at
	// Namespace+"pv". Default "abacus:". Writer records use
	// Namespace+"writer:".
	Namespace string
	// Delivery is flush.ExactlyOnce (default) or flush.AtLeastOnce.
	Delivery flush.Mode
	// BatchKeys is the most keys one exactly-once script call carries.
	// Default 512.
	BatchKeys int
	// MaxPipelineKeys is the most keys sent in one pipeline. Default 16384.
	MaxPipelineKeys int
	// MaxReadAge is how long Value may reuse a Redis value it read. Default
	// 1s. Negative: always read Redis (concurrent readers still share one
	// round trip).
	MaxReadAge time.Duration
	// FlushTimeout bounds one background flush. Default 5s.
	FlushTimeout time.Duration
	// MaxBackoff caps the wait between failing flushes. Default 5s.
	MaxBackoff time.Duration
	// KeyTTL, when positive, expires counters idle that long in Redis.
	// Default 0: counters never expire.
	KeyTTL time.Duration
	// TokenTTL is how long Redis remembers the token of a retry-safe add
	// (see AddOnce) after the flush that writes it: an AddOnce with the
	// same token on the same counter, from any process, is not counted
	// again within it; one after it is. Default 24h; at least 1ms.
	TokenTTL time.Duration
	// MaxPendingTokens bounds the token adds (AddOnce) held in memory
	// until Redis confirms them, about 200 bytes each: unlike Adds they
	// do not coalesce, so they pile up while Redis is down or slower than
	// the adds. Past the bound AddOnce returns ErrTokenBacklog. Default
	// 1,048,576; negative: no bound.
	MaxPendingTokens int
	// RecordTTL is how long an engine's exactly-once records outlive its
	// last flush before the record collector deletes them; also the
	// longest outage a batch in doubt rides through exactly once. Records
	// carry no Redis TTL, so no eviction policy removes them first.
	// Default 1h. See flush.Options.RecordTTL and flush.CollectRecords.
	RecordTTL time.Duration
	// MaxStripes caps the stripes of one hot counter. Default
	// shard.DefaultMaxStripes(): about 2×GOMAXPROCS.
	MaxStripes int
	// IdleEvict is how long a counter used only by name (Add, not a
	// Counter handle) stays in memory with nothing to flush before it is
	// evicted: it leaves between IdleEvict and 2×IdleEvict after its last
	// flush. An evicted name is created again by its next Add. Default
	// 1m; negative: never evict.
	IdleEvict time.Duration
	// Replicas is how many replicas must acknowledge a flushed batch
	// before it counts as written (WAIT, one command per flush round
	// trip); until then it is kept and resent, so a failover cannot lose
	// it. Default 0, auto: one replica once the master has been seen with
	// one. Negative: never wait. See flush.Options.Replicas.
	Replicas int
	// ReplicaTimeout bounds each WAIT. Default 1s.
	ReplicaTimeout time.Duration
	// MaxKeyBackoff caps the wait before a key Redis refused is sent
	// again by a background flush. Default 1m. See flush.KeyError.
	MaxKeyBackoff time.Duration
	// OnError, when set, receives every flush error, *flush.KeyError and
	// *flush.LostError, from the flushing goroutine, and the warnings of
	// the engine's upkeep (an eviction policy that can evict abacus'
	// state, a failed collection of stale writer records).
	OnError func(error)
	// Logger, when not nil, receives the engine's lifecycle events: flushes
	// failing and backing off, and recovering (with the outage's length);
	// replicas seen, so that flushes start to WAIT; regressions and lost
	// batches (a failover or restart lost writes); stale writer records
	// collected; an eviction policy that can evict abacus' state. Errors
	// also go to OnError; the log is for the operator. Default none.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	// Negative Replicas, MaxReadAge and IdleEvict mean never (wait, reuse a
	// read, evict); a negative MaxPendingTokens, no bound.
	if err := invalid.NonNegative(ErrInvalid, "Options", o, "Replicas", "MaxReadAge", "IdleEvict", "Delivery", "MaxPendingTokens"); err != nil {
		return o, err
	}
	if o.Delivery != flush.ExactlyOnce && o.Delivery != flush.AtLeastOnce {
		return o, invalid.New(ErrInvalid, "Options.Delivery", o.Delivery, "unknown mode")
	}
	if len(o.Namespace) > MaxNameLen {
		return o, invalid.New(ErrInvalid, "Options.Namespace", o.Namespace, fmt.Sprintf("must be at most %d bytes", MaxNameLen))
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.Namespace == "" {
		o.Namespace = "abacus:"
	}
	if o.FlushTimeout == 0 {
		o.FlushTimeout = 5 * time.Second
	}
	if o.IdleEvict == 0 {
		o.IdleEvict = time.Minute
	}
	if o.RecordTTL == 0 {
		o.RecordTTL = time.Hour
	}
	if o.MaxReadAge == 0 {
		o.MaxReadAge = time.Second
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = 24 * time.Hour
	}
	if o.MaxPendingTokens == 0 {
		o.MaxPendingTokens = 1 << 20
	}
	if o.TokenTTL < time.Millisecond {
		return o, invalid.New(ErrInvalid, "Options.TokenTTL", o.TokenTTL, "must be at least 1ms")
	}
	return o, nil
}

// flushOptions translates o for package flush.
func (o Options) flushOptions() flush.Options {
	return flush.Options{
		MaxKeyBackoff:  o.MaxKeyBackoff,
		Replicas:       o.Replicas,
		ReplicaTimeout: o.ReplicaTimeout,
		Interval:       o.FlushInterval,
		Mode:           o.Delivery,
		BatchKeys:      o.BatchKeys,
		PipelineKeys:   o.MaxPipelineKeys,
		Timeout:        o.FlushTimeout,
		MaxBackoff:     o.MaxBackoff,
		KeyPrefix:      o.Namespace,
		RecordPrefix:   o.Namespace + "writer:",
		RecordTTL:      o.RecordTTL,
		KeyTTL:         o.KeyTTL,
		TokenTTL:       o.TokenTTL,
		OnError:        o.OnError,
		Logger:         o.Logger,
	}
}
