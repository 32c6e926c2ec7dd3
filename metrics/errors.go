package metrics

import (
	"errors"

	"github.com/abacus-go/abacus/internal/invalid"
)

// ErrInvalid is wrapped by every *InvalidError of this package.
var ErrInvalid = errors.New("metrics: invalid argument")

// InvalidError reports an invalid Options field: Field names it (with the
// index of a list entry, e.g. "Options.Serials[1]"), Value is what was
// given and Reason says what a valid value looks like. It wraps ErrInvalid
// and is the same type as every abacus package's InvalidError.
type InvalidError = invalid.Error
