package flush

import (
	"errors"
	"fmt"
	"strings"

	"github.com/abacus-go/abacus/internal/incrby"
	"github.com/abacus-go/abacus/internal/invalid"
)

// Errors a key can meet in Redis, wrapped by *KeyError.
var (
	// ErrNotInteger: the key holds a string that is not a 64-bit integer.
	ErrNotInteger = errors.New("flush: value is not an integer")
	// ErrOverflow: applying the delta would overflow int64.
	ErrOverflow = errors.New("flush: increment would overflow")
	// ErrWrongType: the key holds a list, hash or other non-string type.
	ErrWrongType = errors.New("flush: key holds the wrong kind of value")
)

// Errors the server can refuse a whole batch with. A flush error wraps
// the matching one next to the server's own message, so errors.Is tells
// the cause even when later batches were refused only because an earlier
// one was (see ErrPending).
var (
	// ErrOutOfMemory: Redis is at maxmemory and its policy (noeviction)
	// refuses writes.
	ErrOutOfMemory = errors.New("flush: redis out of memory")
	// ErrReadOnly: the server is a read-only replica (often a failover in
	// progress, or a client pointed at a replica).
	ErrReadOnly = errors.New("flush: redis is a read-only replica")
	// ErrNoScript: the server did not have the script cached; the batch is
	// resent with EVAL at once, so this is seen only if that fails too.
	ErrNoScript = errors.New("flush: script not cached")
	// ErrBusy: another script is running too long on the server.
	ErrBusy = errors.New("flush: redis busy running a script")
	// ErrLoading: the server is loading its dataset after a restart.
	ErrLoading = errors.New("flush: redis loading its dataset")
	// ErrMasterDown: a replica lost its master (replica-serve-stale-data no).
	ErrMasterDown = errors.New("flush: redis master down")
	// ErrClusterDown: the cluster cannot serve the key's slot.
	ErrClusterDown = errors.New("flush: redis cluster down")
	// ErrNoReplicas: fewer replicas than min-replicas-to-write are in sync.
	ErrNoReplicas = errors.New("flush: not enough redis replicas")
	// ErrMoved: a Cluster master did not serve a key, or a batch's writer
	// record, because its hash slot moved to another master or is being
	// migrated (MOVED, ASK, TRYAGAIN, or a script's "non local key"). The
	// Flusher reloads the slot map and sends the deltas to the master
	// that serves them.
	ErrMoved = errors.New("flush: redis cluster hash slot moved")
	// ErrScriptRejected: the server cannot compile the flush script. On a
	// Cluster the script carries a flag (allow-cross-slot-keys) that needs
	// Redis 7.0 or later.
	ErrScriptRejected = errors.New("flush: redis cannot compile the flush script (a Cluster needs Redis 7.0+)")
)

// serverErrors maps a Redis error prefix to its sentinel.
var serverErrors = []struct {
	prefix string
	err    error
}{
	{"OOM", ErrOutOfMemory},
	{"READONLY", ErrReadOnly},
	{"NOSCRIPT", ErrNoScript},
	{"BUSY", ErrBusy},
	{"LOADING", ErrLoading},
	{"MASTERDOWN", ErrMasterDown},
	{"CLUSTERDOWN", ErrClusterDown},
	{"NOREPLICAS", ErrNoReplicas},
	{"MOVED", ErrMoved},
	{"ASK", ErrMoved},
	{"TRYAGAIN", ErrMoved},
	{"CROSSSLOT", ErrMoved},
	{"ERR Error compiling script", ErrScriptRejected},
}

// classify wraps err with the sentinel of its Redis error prefix, if any.
func classify(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range serverErrors {
		if strings.HasPrefix(msg, s.prefix) {
			return fmt.Errorf("%w: %w", s.err, err)
		}
	}
	return err
}

// ErrPending is wrapped by the error of a flush that left batches whose
// outcome is not yet known; they are sent again on the next flush.
var ErrPending = errors.New("flush: batches pending")

// ErrInvalid is wrapped by every *InvalidError of this package: a bad
// Options field, a nil client or a *redis.Ring, a bad argument.
var ErrInvalid = errors.New("flush: invalid argument")

// InvalidError reports an invalid argument or Options field: Field names
// it, Value is what was given and Reason says what a valid value looks
// like. It wraps ErrInvalid and is the same type as every abacus
// package's InvalidError.
type InvalidError = invalid.Error

// ErrRecordLost is wrapped by *LostError: Redis lost the writer record that
// made a batch in doubt safe to resend.
var ErrRecordLost = errors.New("flush: writer record lost while a batch was in doubt")

// LostError reports a batch that may or may not have been applied and can
// no longer be resent safely: its writer record vanished from Redis (an
// eviction, a restart without persistence, a failover to a replica that
// missed it). The batch was not sent again, since that could count it
// twice; its deltas left the Source and are listed here, for the
// operator to reconcile.
type LostError struct {
	Record string
	Seq    uint64
	Deltas map[string]int64 // key → delta
	Delta  int64            // their sum
}

func (e *LostError) Error() string {
	return fmt.Sprintf("flush: batch %d of record %s (%d keys, delta %d) may not have been applied: %v",
		e.Seq, e.Record, len(e.Deltas), e.Delta, ErrRecordLost)
}

// Is makes errors.Is(err, ErrRecordLost) true.
func (e *LostError) Is(target error) bool { return target == ErrRecordLost }

// KeyError reports a key whose delta Redis refused: Delta is the sum of
// the key's deltas it refused in one flush (several when they are token
// adds), and Refusals counts flushes. The deltas were not applied and
// went back to the Source; other keys were not affected. The key is
// retried after a backoff that doubles with every refusal, up to
// Options.MaxKeyBackoff; a Flush call retries it at once. When Redis
// refused the delta's registration (see Delta.Register), Err says so and
// names the sorted set.
type KeyError struct {
	Key      string
	Delta    int64
	Err      error // ErrNotInteger, ErrOverflow, ErrWrongType or the server's error
	Refusals int   // consecutive refusals of this key, this one included
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("flush: key %q (delta %d, refused %d times): %v", e.Key, e.Delta, e.Refusals, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// notServed reports a script's refusal of a key that the node does not
// serve at that moment, in any Redis version's words: "Script attempted to
// access a non local key in a cluster node" (or "a slot not served", or
// "to execute a command while the cluster is down"), or "undeclared keys
// were accessed during rehashing of the slot". Nothing was applied, and
// the key is not at fault: it is sent again once the slot map is reloaded.
func notServed(msg string) bool {
	return strings.Contains(msg, "attempted to") || strings.Contains(msg, "rehashing of the slot")
}

// registrationErr is the cause of a delta refused because Redis refused
// its registration in set (see Delta.Register) with msg: the key at
// fault is the set, not the delta's.
func registrationErr(set, msg string) error {
	return fmt.Errorf("registering in sorted set %q: %w", set, keyErr(msg))
}

// keyErr classifies a Redis error message from INCRBY.
func keyErr(msg string) error {
	switch incrby.Refused(msg) {
	case incrby.WrongType:
		return ErrWrongType
	case incrby.Overflow:
		return ErrOverflow
	case incrby.NotInteger:
		return ErrNotInteger
	}
	return errors.New(msg)
}

// PendingError is returned by Flush when Redis failed: Batches, Keys and
// Delta count the sent batches whose outcome is in doubt (they are resent
// first next time); deltas that were not sent went back to the Source.
// Err says what failed: the first failure of the flush, not the batches
// refused after it only because an earlier one was in doubt.
type PendingError struct {
	Batches int
	Keys    int
	Delta   int64
	Err     error
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("flush: %d batches (%d keys, delta %d) pending: %v", e.Batches, e.Keys, e.Delta, e.Err)
}

// Is makes errors.Is(err, ErrPending) true.
func (e *PendingError) Is(target error) bool { return target == ErrPending }

func (e *PendingError) Unwrap() error { return e.Err }
