package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/serial"
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
	// WriterTTL is how long this engine's exactly-once records outlive its
	// last flush. Default 1h. See flush.Options.RecordTTL.
	WriterTTL time.Duration
	// MaxStripes caps the stripes of one hot counter. Default
	// shard.DefaultMaxStripes(): about 2×GOMAXPROCS.
	MaxStripes int
	// Serial configures the allocators Engine.Serial returns. Its zero
	// value gives serial's defaults.
	Serial serial.Options
	// OnError, when set, receives every flush error and *flush.KeyError,
	// from the flushing goroutine.
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
	if o.MaxReadAge == 0 {
		o.MaxReadAge = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// flushOptions translates o for package flush.
func (o Options) flushOptions(onError func(error)) flush.Options {
	return flush.Options{
		Interval:     o.FlushInterval,
		Mode:         o.Delivery,
		BatchKeys:    o.BatchKeys,
		PipelineKeys: o.MaxPipelineKeys,
		Timeout:      o.FlushTimeout,
		MaxBackoff:   o.MaxBackoff,
		RecordPrefix: o.Namespace + "writer:",
		RecordTTL:    o.WriterTTL,
		KeyTTL:       o.KeyTTL,
		OnError:      onError,
		Now:          o.Now,
	}
}
