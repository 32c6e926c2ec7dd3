package replicas

import (
	"fmt"
	"strings"
	"time"
)

// Error reports a write that fewer replicas than wanted acknowledged
// within the timeout, or whose WAIT failed: the master applied it, and a
// failover to a replica that missed it would undo it. It is the one shape
// of that error in abacus: every package that waits for replicas declares
// its own ErrNotReplicated, which Error wraps, and aliases Error as its
// ReplicationError, so a caller checks any of them the same way:
//
//	errors.Is(err, queue.ErrNotReplicated) // a write of this package fell short
//	var re *queue.ReplicationError         // which, and by how much
//	errors.As(err, &re)
//
// NewError builds a complete one. A value built otherwise (a literal, the
// zero value) is safe to use, but wraps no ErrNotReplicated and its text
// names no package.
type Error struct {
	// Op is the write, in the reporting package's words: `push of 3
	// messages to queue "jobs"`, `block (100, 200] of key "orders"`.
	Op string
	// Want is the number of replicas asked for.
	Want int
	// Acked is the number that acknowledged within Timeout: 0 when WAIT
	// failed.
	Acked int
	// Timeout is the package's Options.ReplicaTimeout.
	Timeout time.Duration
	// Err is WAIT's own failure, or nil when it answered with too few.
	Err error
	pkg error // the package's ErrNotReplicated, which Error wraps
}

// NewError returns an *Error wrapping sentinel, the reporting package's
// ErrNotReplicated, and waitErr (nil when WAIT answered).
func NewError(sentinel error, op string, want, acked int, timeout time.Duration, waitErr error) *Error {
	return &Error{Op: op, Want: want, Acked: acked, Timeout: timeout, Err: waitErr, pkg: sentinel}
}

// Error reads like `queue: push of 3 messages to queue "jobs": 0 of 1
// replicas acknowledged within 1s`, or names WAIT's failure.
func (e *Error) Error() string {
	var pkg string
	if e.pkg != nil {
		name, _, _ := strings.Cut(e.pkg.Error(), ":")
		pkg = name + ": "
	}
	op := e.Op
	if op == "" {
		op = "write"
	}
	if e.Err != nil {
		return fmt.Sprintf("%s%s: WAIT %d: %v", pkg, op, e.Want, e.Err)
	}
	return fmt.Sprintf("%s%s: %d of %d replicas acknowledged within %v", pkg, op, e.Acked, e.Want, e.Timeout)
}

// Unwrap returns the package's ErrNotReplicated, and WAIT's failure if
// any: those of the two that are set.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.pkg, e.Err} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
