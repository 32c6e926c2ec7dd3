// Package invalid is the one shape of abacus' invalid-argument errors.
// Every public package declares its own sentinel (engine.ErrInvalid,
// lease.ErrInvalid, …) and aliases Error as its InvalidError, so a caller
// checks any of them the same way:
//
//	errors.Is(err, lease.ErrInvalid)         // this package refused an argument
//	var ie *lease.InvalidError               // which one, and why
//	errors.As(err, &ie)
//
// It also holds the one policy for names (MaxNameLen) that all packages
// apply to counter, lease, queue and serial names.
package invalid

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxNameLen is the longest name any abacus package accepts, in bytes.
// Names become parts of Redis keys; 1 KiB leaves room for prefixes and
// hash tags while keeping keys far below anything Redis or a pipeline
// would notice.
const MaxNameLen = 1024

// Error reports an invalid argument or option. Field names it as the
// caller wrote it ("name", "ttl", "Options.BatchKeys"), Value is what was
// given and Reason says what a valid value looks like.
type Error struct {
	Field  string
	Value  any
	Reason string
	pkg    error // the package's ErrInvalid, which Error wraps
}

// New returns an *Error wrapping sentinel, the reporting package's
// ErrInvalid.
func New(sentinel error, field string, value any, reason string) *Error {
	return &Error{Field: field, Value: value, Reason: reason, pkg: sentinel}
}

// Error reads like `lease: invalid ttl 500µs: must be at least 1ms`: the
// package prefix of the sentinel, the field, the value and the reason.
func (e *Error) Error() string {
	pkg, _, _ := strings.Cut(e.pkg.Error(), ":")
	return fmt.Sprintf("%s: invalid %s %s: %s", pkg, e.Field, show(e.Value), e.Reason)
}

// Unwrap returns the package's ErrInvalid.
func (e *Error) Unwrap() error { return e.pkg }

// show formats v for a message: strings quoted and cut at 40 bytes (a
// 1 MiB name must not become a 1 MiB log line), nil as "nil".
func show(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case string:
		if len(v) > 40 {
			return fmt.Sprintf("%q (%d bytes)", v[:40]+"…", len(v))
		}
		return fmt.Sprintf("%q", v)
	case time.Duration:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// Name checks a name against the common policy: not empty, at most
// MaxNameLen bytes. field is how the caller calls it ("name", "key").
func Name(sentinel error, field, name string) error {
	switch {
	case name == "":
		return New(sentinel, field, name, "must not be empty")
	case len(name) > MaxNameLen:
		return New(sentinel, field, name, fmt.Sprintf("must be at most %d bytes", MaxNameLen))
	}
	return nil
}

// NonNegative checks every integer and duration field of the options
// struct opts, but those named in except, and reports the first that is
// negative: in abacus options zero means "the default" and a negative
// value means something only where a field says so (those are except).
// prefix names the struct in the error ("Options", "RollupOptions").
func NonNegative(sentinel error, prefix string, opts any, except ...string) error {
	v := reflect.ValueOf(opts)
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || slices.Contains(except, f.Name) {
			continue
		}
		switch fv := v.Field(i); fv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if fv.Int() < 0 {
				return New(sentinel, prefix+"."+f.Name, fv.Interface(), "must not be negative (zero means the default)")
			}
		}
	}
	return nil
}

// Client checks a Redis client the one way every package does: it must
// be set, and not a *redis.Ring, which routes each command by its own key
// and so would send a batch's keys, or a WAIT, to different shards than
// the writes they belong to. Supported are *redis.Client (also from
// NewFailoverClient, for Sentinel) and *redis.ClusterClient.
func Client(sentinel error, rdb redis.UniversalClient) error {
	switch c := rdb.(type) {
	case nil:
		return New(sentinel, "client", nil, "a Redis client is required")
	case *redis.Client:
		if c == nil {
			return New(sentinel, "client", nil, "a Redis client is required")
		}
	case *redis.ClusterClient:
		if c == nil {
			return New(sentinel, "client", nil, "a Redis client is required")
		}
	case *redis.Ring:
		return New(sentinel, "client", "*redis.Ring", "a Ring routes each command by its own key, splitting what must go to one node; use a Client, a failover Client or a ClusterClient")
	}
	return nil
}
