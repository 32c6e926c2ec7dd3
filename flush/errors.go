package flush

import (
	"errors"
	"fmt"
	"strings"
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

// ErrPending is wrapped by the error of a flush that left batches whose
// outcome is not yet known; they are sent again on the next flush.
var ErrPending = errors.New("flush: batches pending")

// ErrInvalidOptions is wrapped by the error New returns for bad Options.
var ErrInvalidOptions = errors.New("flush: invalid options")

// KeyError reports a delta Redis refused for one key. The delta was not
// applied and went back to the Source; other keys were not affected.
type KeyError struct {
	Key   string
	Delta int64
	Err   error // ErrNotInteger, ErrOverflow, ErrWrongType or the server's error
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("flush: key %q (delta %d): %v", e.Key, e.Delta, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// keyErr classifies a Redis error message from INCRBY.
func keyErr(msg string) error {
	switch {
	case strings.HasPrefix(msg, "WRONGTYPE"):
		return ErrWrongType
	case strings.Contains(msg, "overflow"):
		return ErrOverflow
	case strings.Contains(msg, "not an integer"):
		return ErrNotInteger
	}
	return errors.New(msg)
}

// PendingError is returned by Flush when Redis failed: Batches, Keys and
// Delta count the sent batches whose outcome is in doubt (they are resent
// first next time); deltas that were not sent went back to the Source.
// Err says what failed.
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
