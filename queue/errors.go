package queue

import (
	"errors"
	"fmt"
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

// InvalidError describes one bad argument or Options field. It wraps
// [ErrInvalid].
type InvalidError struct {
	// Field names the argument or Options field, e.g. "name" or
	// "Options.LeaseTTL".
	Field string
	// Value is the rejected value.
	Value any
	// Reason says what a valid value looks like.
	Reason string
}

// Error implements error.
func (e *InvalidError) Error() string {
	if s, ok := e.Value.(string); ok {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return fmt.Sprintf("queue: invalid %s %q: %s", e.Field, s, e.Reason)
	}
	return fmt.Sprintf("queue: invalid %s %v: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns [ErrInvalid].
func (e *InvalidError) Unwrap() error { return ErrInvalid }

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

var (
	_ error = (*InvalidError)(nil)
	_ error = (*SizeError)(nil)
)
