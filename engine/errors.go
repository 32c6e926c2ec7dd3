package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/abacus-go/abacus/internal/invalid"
)

// ErrClosed is returned by calls on a closed Engine; Counter.Add after
// Close drops its delta and counts it in Stats.RejectedAdds.
var ErrClosed = errors.New("engine: closed")

// ErrInvalid is wrapped by every *InvalidError of this package: an empty
// or over-long counter name, a nil client, a bad Options field.
var ErrInvalid = errors.New("engine: invalid argument")

// InvalidError reports an invalid argument or Options field: Field names
// it ("name", "Options.BatchKeys"), Value is what was given and Reason
// says what a valid value looks like. It wraps ErrInvalid and is the same
// type as every abacus package's InvalidError.
type InvalidError = invalid.Error

// validName reports whether name is a valid counter name; it inlines, so
// the hot path can test a name without a call.
func validName(name string) bool { return name != "" && len(name) <= MaxNameLen }

// checkName returns the error for an invalid name, nil for a valid one.
func checkName(name string) error { return invalid.Name(ErrInvalid, "name", name) }

// UnflushedError is returned by Close when some deltas could not be
// written before its context ended (or were refused by Redis for their
// key). They are lost when the process exits. InDoubt of Delta was sent
// and not confirmed: Redis may have applied it (exactly once).
type UnflushedError struct {
	Keys    int      // counters with unwritten deltas
	Delta   int64    // their sum
	InDoubt int64    // the part of Delta sent to Redis and not confirmed
	Names   []string // up to 10 of them, for the log
	// Token adds (see Engine.AddOnce) not confirmed: how many, their sum,
	// the part of it sent and not confirmed (Redis may have applied it,
	// once), and up to 10 of their counters.
	Tokens       int
	TokenDelta   int64
	TokenInDoubt int64
	TokenNames   []string
	// Unique counts (see Engine.Unique) with registers left unwritten:
	// how many, their registers, the part of those sent and not
	// confirmed (Redis may have merged them), and up to 10 names.
	Uniques          int
	Registers        int
	RegistersInDoubt int
	UniqueNames      []string
	Err              error // why: the last flush error, or ctx's
}

func (e *UnflushedError) Error() string {
	var b strings.Builder
	b.WriteString("engine:")
	if e.Keys > 0 {
		fmt.Fprintf(&b, " %d counters (delta %d, %d of it in doubt) not flushed, e.g. %s;",
			e.Keys, e.Delta, e.InDoubt, strings.Join(e.Names, ", "))
	}
	if e.Tokens > 0 {
		fmt.Fprintf(&b, " %d token adds (delta %d, %d of it in doubt) not flushed, e.g. to %s;",
			e.Tokens, e.TokenDelta, e.TokenInDoubt, strings.Join(e.TokenNames, ", "))
	}
	if e.Uniques > 0 {
		fmt.Fprintf(&b, " %d unique counts (%d registers, %d of them in doubt) not flushed, e.g. %s;",
			e.Uniques, e.Registers, e.RegistersInDoubt, strings.Join(e.UniqueNames, ", "))
	}
	fmt.Fprintf(&b, " %v", e.Err)
	return b.String()
}

func (e *UnflushedError) Unwrap() error { return e.Err }
