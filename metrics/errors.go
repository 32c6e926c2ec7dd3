package metrics

import "errors"

// ErrInvalid is wrapped by every *InvalidError.
var ErrInvalid = errors.New("metrics: invalid options")

// InvalidError describes one bad Options field. It wraps ErrInvalid.
type InvalidError struct {
	// Field names the Options field, with the index of a list entry, e.g.
	// "Serials[1]".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

func (e *InvalidError) Error() string { return "metrics: Options." + e.Field + " " + e.Reason }

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

var _ error = (*InvalidError)(nil)
