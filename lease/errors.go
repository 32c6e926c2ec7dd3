package lease

import (
	"errors"

	"github.com/abacus-go/abacus/internal/invalid"
	"github.com/abacus-go/abacus/internal/replicas"
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

// ErrNotReplicated is wrapped by every [*ReplicationError]: fewer replicas
// than Options.Replicas wanted acknowledged an acquisition or a refresh
// within Options.ReplicaTimeout, or WAIT failed. An acquisition was
// released; a refresh left the local deadline where it was.
var ErrNotReplicated = errors.New("lease: not acknowledged by replicas")

// ReplicationError reports an acquisition or a refresh that fewer
// replicas than wanted acknowledged, or whose WAIT failed: Op names the
// lease's key, Want and Acked count the replicas asked for and those that
// acknowledged within Timeout, and Err is WAIT's own failure, if it
// failed. It wraps [ErrNotReplicated] and is the same type as every abacus
// package's ReplicationError.
type ReplicationError = replicas.Error

// ErrInvalid is wrapped by every [*InvalidError]: a bad name, TTL, client
// or Options field.
var ErrInvalid = errors.New("lease: invalid argument")

// InvalidError describes one bad argument or Options field: Field names
// it ("name", "ttl", "Options.RenewInterval"), Value is what was given and
// Reason says what a valid value looks like. It wraps [ErrInvalid]. It is
// the same type as every abacus package's InvalidError.
type InvalidError = invalid.Error
