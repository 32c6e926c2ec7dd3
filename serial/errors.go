package serial

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Errors returned by this package wrap one of them (or a
// context error, or a Redis client error) and are checked with errors.Is.
var (
	// ErrEmptyKey is returned by New, Reseed and Resume for an empty key.
	ErrEmptyKey = errors.New("serial: empty key")
	// ErrInvalidOptions is wrapped by every *OptionError.
	ErrInvalidOptions = errors.New("serial: invalid options")
	// ErrNilClient is returned by New and Reseed for a nil Redis client.
	ErrNilClient = errors.New("serial: nil redis client")
	// ErrInvalidCount is returned by NextN for a negative count.
	ErrInvalidCount = errors.New("serial: negative count")
	// ErrInvalidFloor is returned by Reseed and Resume for a negative floor.
	ErrInvalidFloor = errors.New("serial: negative floor")
	// ErrNotInteger means the key holds something INCRBY cannot increment:
	// a string that is not an int64, or a value of another type.
	ErrNotInteger = errors.New("serial: key does not hold an integer")
	// ErrOverflow means INCRBY would overflow int64: the key's ID space is
	// exhausted.
	ErrOverflow = errors.New("serial: counter would overflow int64")
	// ErrRegression is wrapped by every *RegressionError.
	ErrRegression = errors.New("serial: redis counter went backwards")
	// ErrNotReplicated is wrapped by every *ReplicationError.
	ErrNotReplicated = errors.New("serial: block not acknowledged by enough replicas")
	// ErrClosed is returned by every call on a closed Allocator.
	ErrClosed = errors.New("serial: allocator closed")
)

// OptionError reports an invalid Options field. It wraps ErrInvalidOptions.
type OptionError struct {
	Field  string // name of the Options field, e.g. "MinBlock"
	Value  any    // the value given
	Reason string // what a valid value looks like
}

// Error implements error.
func (e *OptionError) Error() string {
	return fmt.Sprintf("serial: invalid options: %s = %v: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidOptions.
func (e *OptionError) Unwrap() error { return ErrInvalidOptions }

// RegressionError reports that Redis granted a block that does not start
// above the highest block this Allocator had already accepted, which means
// Redis lost writes. No ID of the refused block was issued. It wraps
// ErrRegression.
type RegressionError struct {
	// Key is the Redis key of the Allocator.
	Key string
	// End is what INCRBY returned; the refused block was (End-Size, End].
	End  int64
	Size int64
	// HighWater is the end of the highest block this Allocator accepted
	// before: every ID it issued is at most HighWater. Reseeding the key to
	// at least HighWater (and to at least every other process's) is the
	// recovery; see Allocator.Resume.
	HighWater int64
}

// Error implements error.
func (e *RegressionError) Error() string {
	return fmt.Sprintf("serial: redis counter went backwards: key %q granted block (%d, %d] but IDs up to %d were already leased; reseed the key to at least %d and call Resume",
		e.Key, e.End-e.Size, e.End, e.HighWater, e.HighWater)
}

// Unwrap returns ErrRegression.
func (e *RegressionError) Unwrap() error { return ErrRegression }

// ReplicationError reports that WAIT did not see enough replicas acknowledge
// a block's INCRBY within the timeout: the master has fewer replicas than
// wanted (a failover in progress, a replica down) or they lag. The block was
// discarded, never issued; a later fetch gets one above it. Next returns it
// only when no acknowledged block is left to issue from. It wraps
// ErrNotReplicated.
type ReplicationError struct {
	Key     string        // the Redis key of the Allocator
	End     int64         // what INCRBY returned; the discarded block was (End-Size, End]
	Size    int64         // the size of the discarded block
	Want    int           // replicas wanted: Options.Replicas, or 1 in auto mode
	Acked   int           // replicas that acknowledged within Timeout
	Timeout time.Duration // Options.ReplicaTimeout
}

// Error implements error.
func (e *ReplicationError) Error() string {
	return fmt.Sprintf("serial: block not acknowledged by enough replicas: key %q block ending at %d: %d of %d replicas acknowledged within %v",
		e.Key, e.End, e.Acked, e.Want, e.Timeout)
}

// Unwrap returns ErrNotReplicated.
func (e *ReplicationError) Unwrap() error { return ErrNotReplicated }
