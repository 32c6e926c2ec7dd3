package flush

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/abacus-go/abacus/internal/invalid"
)

// Mode chooses how deltas are written.
type Mode int

const (
	// ExactlyOnce applies each batch once even when replies are lost (the
	// default). See the package documentation.
	ExactlyOnce Mode = iota
	// AtLeastOnce sends plain pipelined INCRBYs (see the package
	// documentation); a lost reply may double count.
	AtLeastOnce
)

func (m Mode) String() string {
	switch m {
	case ExactlyOnce:
		return "exactly-once"
	case AtLeastOnce:
		return "at-least-once"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Options configure a Flusher. The zero value gives the defaults noted on
// each field; a negative duration or size is an error.
type Options struct {
	// Interval between background flushes. Default 100ms.
	Interval time.Duration
	// Mode: ExactlyOnce (default) or AtLeastOnce.
	Mode Mode
	// BatchKeys is the most keys one script call (one batch) carries.
	// Default 512.
	BatchKeys int
	// PipelineKeys is the most keys sent in one pipeline round trip.
	// Default 16384.
	PipelineKeys int
	// Timeout bounds one flush. Default 5s. (go-redis's own dial and read
	// timeouts apply within it.)
	Timeout time.Duration
	// MaxBackoff caps the wait between failing flushes, which doubles from
	// Interval. Default 5s.
	MaxBackoff time.Duration
	// WriterID is a label for this writer's batches, to tell writers
	// apart in Redis (a host name, say). The Flusher appends 16 random
	// bytes in hex, so no two Flushers ever share an identity, whatever
	// the label. Default: no label.
	WriterID string
	// KeyPrefix is prepended to every Delta.Key to make the key written in
	// Redis (the engine passes its namespace), so that a Source need not
	// build a string per key per flush. Registration sets are not
	// prefixed. Default "": a Delta's Key is its Redis key.
	KeyPrefix string
	// RecordPrefix prefixes the writer record keys. Default "abacus:writer:".
	RecordPrefix string
	// RecordTTL is how long a writer record outlives the writer's last
	// batch before CollectRecords may delete it; also the longest an
	// unknown outcome can stay exactly-once. Records carry no Redis TTL,
	// so that no eviction policy removes them ahead of the counters.
	// Default 1h.
	RecordTTL time.Duration
	// Replicas is how many replicas must acknowledge a batch (WAIT, in
	// the same round trip) before it counts as applied; until then it is
	// kept and resent, so a failover cannot lose it. Default 0, "auto":
	// one replica once the master has been seen with one, and from then
	// on (a failover in progress looks like a master without replicas);
	// nothing while none was ever seen. Negative: never wait.
	Replicas int
	// ReplicaTimeout bounds each WAIT. Default 1s.
	ReplicaTimeout time.Duration
	// MaxKeyBackoff caps the wait before a key Redis refused (see
	// KeyError) is sent again by a background flush; the wait doubles
	// from Interval with every refusal. Default 1m.
	MaxKeyBackoff time.Duration
	// KeyTTL, when positive, sets an expiry on every key written (PEXPIRE
	// after INCRBY), so idle counters vanish. Default 0: no expiry.
	KeyTTL time.Duration
	// TokenTTL is how long Redis keeps a delta's Token (see Delta.Token)
	// after the batch that creates it: a delta under the same token is not
	// applied again within it; one after it is. Default 24h; at least 1ms.
	TokenTTL time.Duration
	// OnError, when set, is called from the flushing goroutine with each
	// *KeyError and each failed flush.
	OnError func(error)
	// Logger, when not nil, receives lifecycle events: flushes failing and
	// backing off, and recovering (with how long they failed); replicas
	// seen, so that batches start to wait for them; Redis losing writes
	// (LostError, RegressionError). Default none.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	// A negative Replicas means never wait.
	if err := invalid.NonNegative(ErrInvalid, "Options", o, "Replicas", "Mode"); err != nil {
		return o, err
	}
	if o.Mode != ExactlyOnce && o.Mode != AtLeastOnce {
		return o, invalid.New(ErrInvalid, "Options.Mode", o.Mode, "unknown mode")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Interval, 100*time.Millisecond)
	def(&o.Timeout, 5*time.Second)
	def(&o.MaxBackoff, 5*time.Second)
	def(&o.RecordTTL, time.Hour)
	def(&o.MaxKeyBackoff, time.Minute)
	def(&o.ReplicaTimeout, time.Second)
	def(&o.TokenTTL, 24*time.Hour)
	if o.TokenTTL < time.Millisecond {
		return o, invalid.New(ErrInvalid, "Options.TokenTTL", o.TokenTTL, "must be at least 1ms (SET PX takes milliseconds)")
	}
	if o.BatchKeys == 0 {
		o.BatchKeys = 512
	}
	if o.PipelineKeys == 0 {
		o.PipelineKeys = 16384
	}
	if o.PipelineKeys < o.BatchKeys {
		o.PipelineKeys = o.BatchKeys
	}
	if o.RecordPrefix == "" {
		o.RecordPrefix = "abacus:writer:"
	}
	return o, nil
}
