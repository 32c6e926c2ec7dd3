package queue

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// FormatVersion is the first byte of every stored message.
const FormatVersion byte = 1

// headerLen is the stored size of a message without its body: the version
// byte and the ID.
const headerLen = 1 + len(ID{})

// ID identifies a message. Push gives every message a random ID; a message
// redelivered after a crash or a nack keeps it, so consumers can recognise
// duplicates. The zero value is a valid (if unlikely) ID.
type ID [16]byte

// String returns the ID in hexadecimal.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// NewID returns a random ID.
func NewID() ID {
	var id ID
	rand.Read(id[:])
	return id
}

// Message is one delivery of a message to a handler. The handler may keep
// Body after it returns.
type Message struct {
	// ID is the message's identity, the same on every delivery.
	ID ID
	// Body is the payload given to Push.
	Body []byte
	// Attempt is 1 on the first delivery and grows with each failed one
	// (handler error, panic, or a crash of the consumer that held it).
	Attempt int
	// Fence is the fencing number of the Drain lease the message was
	// delivered under, or 0 for Consume.
	Fence int64
}

// Encode returns the stored form of a message: FormatVersion, the 16 bytes
// of id, then body. The format is stable, so other writers (such as a Lua
// script) may push messages onto a queue's ready list directly.
func Encode(id ID, body []byte) []byte {
	b := make([]byte, headerLen+len(body))
	b[0] = FormatVersion
	copy(b[1:], id[:])
	copy(b[headerLen:], body)
	return b
}

// Decode splits a stored message into its ID and body (which aliases b).
// It returns an error wrapping ErrMalformed if b is not in the format of
// Encode.
func Decode(b []byte) (ID, []byte, error) {
	var id ID
	if len(b) < headerLen || b[0] != FormatVersion {
		n := min(len(b), 8)
		return id, nil, fmt.Errorf("%w: %d bytes starting %q", ErrMalformed, len(b), b[:n])
	}
	copy(id[:], b[1:headerLen])
	return id, b[headerLen:], nil
}
