package queue

import (
	"errors"
	"fmt"

	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/internal/replicas"
)

// ErrInvalid is wrapped by every [*InvalidError]: an empty or malformed
// queue name, a nil client or handler, or a bad Options field.
var ErrInvalid = errors.New("queue: invalid argument")

// ErrTooLarge is wrapped by every [*SizeError]: a message body longer than
// Options.MaxMessageBytes.
var ErrTooLarge = errors.New("queue: message too large")

// ErrFenced means a Drain owner's move or acknowledgement was refused
// because its lease is no longer the current one: it expired, or a newer
// owner (with a greater fencing number) took over. The refused step changed
// nothing in Redis.
var ErrFenced = errors.New("queue: fenced off: drain lease no longer held")

// ErrMalformed means a list entry is not a message in the queue's format
// (see [Encode]). Consumers move such entries to the dead-letter list.
var ErrMalformed = errors.New("queue: malformed message")

// ErrPanic is wrapped by the error a handler panic is turned into; the
// message is nacked and the consumer goes on.
var ErrPanic = errors.New("queue: handler panicked")

// ErrNotReplicated is wrapped by every [*ReplicationError]: fewer replicas
// than wanted (Options.Replicas) acknowledged a write in time.
var ErrNotReplicated = errors.New("queue: not acknowledged by replicas")

// ReplicationError reports a write the master applied but fewer than Want
// replicas acknowledged (Acked) within Timeout, so a failover may still
// undo it. Op names the write and the queue: `push of 3 messages to queue "jobs"`,
// `take from queue "jobs"` or `drain take from queue "jobs"`. It wraps
// [ErrNotReplicated] and is the same type as every abacus package's
// ReplicationError.
//
// From Push it means: the messages may or may not survive; push them
// again, under the same IDs with [Queue.PushWithIDs] so that a consumer
// recognises a second copy. From a consumer's or Drain's take (reported to
// Options.OnError) it means: the taken messages were not handed to the
// handler, the take is retried, and nothing is lost, since a master that
// a failover demoted (and that cannot show a replica) must not feed
// handlers messages the new master will deliver again.
type ReplicationError = replicas.Error

// notReplicated returns the *ReplicationError of op, a write to q that
// want replicas were asked for and acked acknowledged.
func (q *Queue) notReplicated(op string, want, acked int) error {
	return replicas.NewError(ErrNotReplicated, fmt.Sprintf("%s queue %q", op, q.name), want, acked, q.opts.ReplicaTimeout, nil)
}

// InvalidError reports an invalid argument or Options field: Field names
// it ("name", "Options.Prefetch"), Value is what was given and Reason says
// what a valid value looks like. It wraps ErrInvalid and is the same type
// as every abacus package's InvalidError.
type InvalidError = invalid.Error

// SizeError reports a message body over the size limit. Push returns it
// before sending anything: no message of that call is pushed.
type SizeError struct {
	// Index is the position of the first oversized body among Push's
	// arguments.
	Index int
	// Size is its length in bytes.
	Size int
	// Limit is Options.MaxMessageBytes.
	Limit int
}

// Error implements error.
func (e *SizeError) Error() string {
	return fmt.Sprintf("queue: message %d is %d bytes, over the limit of %d; nothing was pushed", e.Index, e.Size, e.Limit)
}

// Unwrap returns [ErrTooLarge].
func (e *SizeError) Unwrap() error { return ErrTooLarge }

var _ error = (*SizeError)(nil)
