package serial

import (
	"errors"
	"fmt"

	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/internal/replicas"
)

// Sentinel errors. Errors returned by this package wrap one of them (or a
// context error, or a Redis client error) and are checked with errors.Is.
var (
	// ErrInvalid is wrapped by every *InvalidError: an empty or over-long
	// key, a nil client, a bad Options field, a negative count or floor.
	ErrInvalid = errors.New("serial: invalid argument")
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

// InvalidError reports an invalid argument or Options field: Field names
// it ("key", "Options.MinBlock"), Value is what was given and Reason says
// what a valid value looks like. It wraps ErrInvalid and is the same type
// as every abacus package's InvalidError.
type InvalidError = invalid.Error

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

// ReplicationError reports that WAIT did not see enough replicas
// acknowledge a block's INCRBY within Options.ReplicaTimeout: the master
// has fewer replicas than wanted (a failover in progress, a replica down)
// or they lag. Op names the block (`block (100, 200] of key "orders"`),
// Want and Acked count the replicas asked for and those that acknowledged
// within Timeout. The block was discarded, never issued; a later fetch
// gets one above it. Next returns it only when no acknowledged block is
// left to issue from. It wraps ErrNotReplicated and is the same type as
// every abacus package's ReplicationError.
type ReplicationError = replicas.Error
