package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/abacus-go/abacus/flush"
)

// MaxNameLen is the longest counter name accepted, in bytes.
const MaxNameLen = 1024

// Options configure an Engine. The zero value gives the defaults noted on
// each field; invalid values make New return an *OptionError.
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
	// WriterTTL is how long an engine's exactly-once records outlive its
	// last flush before the record collector deletes them; also the
	// longest outage a batch in doubt rides through exactly once. Records
	// carry no Redis TTL, so no eviction policy removes them first.
	// Default 1h. See flush.Options.RecordTTL and flush.CollectRecords.
	WriterTTL time.Duration
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
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// ErrInvalidOptions is wrapped by every *OptionError.
var ErrInvalidOptions = errors.New("engine: invalid options")

// OptionError reports an invalid Options field.
type OptionError struct {
	Field  string
	Value  any
	Reason string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("engine: invalid option %s = %v: %s", e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidOptions) true.
func (e *OptionError) Is(target error) bool { return target == ErrInvalidOptions }

func (o Options) withDefaults() (Options, error) {
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"FlushInterval", o.FlushInterval},
		{"FlushTimeout", o.FlushTimeout},
		{"MaxBackoff", o.MaxBackoff},
		{"KeyTTL", o.KeyTTL},
		{"WriterTTL", o.WriterTTL},
		{"MaxKeyBackoff", o.MaxKeyBackoff},
		{"ReplicaTimeout", o.ReplicaTimeout},
	} {
		if d.v < 0 {
			return o, &OptionError{d.field, d.v, "must be positive (or zero for the default)"}
		}
	}
	for _, n := range []struct {
		field string
		v     int
	}{
		{"BatchKeys", o.BatchKeys},
		{"MaxPipelineKeys", o.MaxPipelineKeys},
		{"MaxStripes", o.MaxStripes},
	} {
		if n.v < 0 {
			return o, &OptionError{n.field, n.v, "must be positive (or zero for the default)"}
		}
	}
	if o.Delivery != flush.ExactlyOnce && o.Delivery != flush.AtLeastOnce {
		return o, &OptionError{"Delivery", o.Delivery, "unknown mode"}
	}
	if len(o.Namespace) > MaxNameLen {
		return o, &OptionError{"Namespace", o.Namespace, fmt.Sprintf("longer than %d bytes", MaxNameLen)}
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
	if o.WriterTTL == 0 {
		o.WriterTTL = time.Hour
	}
	if o.MaxReadAge == 0 {
		o.MaxReadAge = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
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
		RecordTTL:      o.WriterTTL,
		KeyTTL:         o.KeyTTL,
		OnError:        o.OnError,
		Now:            o.Now,
	}
}
