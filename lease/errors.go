package lease

import (
	"errors"
	"fmt"
)

// ErrNotObtained means the lease is held by someone else. TryAcquire returns
// it when its one attempt fails; Acquire retries on it until its context
// ends.
var ErrNotObtained = errors.New("lease: not obtained")

// ErrLost means Redis no longer held this lease's token although the local
// deadline had not passed: the key was deleted, overwritten, or lost in a
// Redis restart or failover. Another process may own the name now.
var ErrLost = errors.New("lease: lost")

// ErrExpired means the lease's local deadline passed before it was released
// or refreshed: renewals failed or were not made in time. Work done after
// the deadline was not protected by the lease.
var ErrExpired = errors.New("lease: expired before release")

// ErrReleased is returned by Refresh, TTL and a second Release after
// Release, and is the cause of the lease's context after a release.
var ErrReleased = errors.New("lease: released")

// ErrNotReplicated means fewer replicas than Options.Replicas wanted
// acknowledged an acquisition or a refresh within Options.ReplicaTimeout,
// or WAIT failed. An acquisition was released; a refresh left the local
// deadline where it was.
var ErrNotReplicated = errors.New("lease: not acknowledged by replicas")

// ErrInvalid is wrapped by every [*InvalidError]: a bad name, TTL, client
// or Options field.
var ErrInvalid = errors.New("lease: invalid argument")

// InvalidError describes one bad argument or Options field. It wraps
// [ErrInvalid].
type InvalidError struct {
	// Field names the argument or Options field, e.g. "name" or
	// "Options.RenewInterval".
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
		return fmt.Sprintf("lease: invalid %s %q: %s", e.Field, s, e.Reason)
	}
	return fmt.Sprintf("lease: invalid %s %v: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns [ErrInvalid].
func (e *InvalidError) Unwrap() error { return ErrInvalid }

var _ error = (*InvalidError)(nil)
