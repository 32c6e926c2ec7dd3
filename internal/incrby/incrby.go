// Package incrby tells why Redis refused to increment a key, from the
// error it answered INCRBY (or a script's INCRBY) with, so that every
// package that increments (flush, serial) reads Redis' wording the same
// way and reports the cause with its own sentinel.
package incrby

import "strings"

// Refusal is why Redis refused an increment.
type Refusal int

const (
	// Other: not a refusal of the key's value (a server or transport
	// error, which says nothing about the key).
	Other Refusal = iota
	// WrongType: the key holds a list, hash or other non-string type.
	WrongType
	// NotInteger: the key holds a string that is not a 64-bit integer.
	NotInteger
	// Overflow: the increment would take the value past int64.
	Overflow
)

// Refused classifies msg, the text of Redis' error reply to INCRBY:
// "WRONGTYPE Operation against a key holding the wrong kind of value",
// "ERR value is not an integer or out of range", "ERR increment or
// decrement would overflow".
func Refused(msg string) Refusal {
	switch {
	case strings.HasPrefix(msg, "WRONGTYPE"):
		return WrongType
	case strings.Contains(msg, "overflow"):
		return Overflow
	case strings.Contains(msg, "not an integer"):
		return NotInteger
	}
	return Other
}
