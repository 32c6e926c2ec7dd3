package tune

import (
	"errors"
	"io"
	"time"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/invalid"
)

// DefaultIntervals is the sweep Run uses when Options.Intervals is empty.
var DefaultIntervals = []time.Duration{
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second,
}

// Options describe the load profile and the sweep. The zero value gives
// the defaults noted on each field.
type Options struct {
	// Keys is the number of distinct counters. Default 1000.
	Keys int
	// Skew is the Zipf exponent s of key popularity (s > 1; larger is more
	// skewed: at 1.1 the top key gets about a tenth of the adds). 0 means
	// the default 1.1; a negative value means uniform.
	Skew float64
	// Goroutines adding. Default 8.
	Goroutines int
	// Rate is the target total adds per second. Default 200,000. The
	// achieved rate is reported in Step.AddsPerSec.
	Rate float64
	// Intervals to sweep. Default DefaultIntervals (10ms … 5s).
	Intervals []time.Duration
	// Duration is the least time spent measuring each interval; a step
	// lasts at least MinFlushes intervals too. Default 2s.
	Duration time.Duration
	// MinFlushes is the least number of flush intervals per step. Default 3.
	MinFlushes int
	// Probes is the number of staleness probe goroutines. Default 2.
	Probes int
	// Delivery of the engine under test. Default flush.ExactlyOnce.
	Delivery flush.Mode
	// Namespace prefixes every key the tuner writes; it deletes them after
	// each step. Default "abacus-tune:<random>:".
	Namespace string
	// Progress, when set, receives a line as each step starts.
	Progress io.Writer
}

// ErrInvalid is wrapped by every *InvalidError of this package.
var ErrInvalid = errors.New("tune: invalid argument")

// InvalidError reports an invalid Options field. It wraps ErrInvalid and
// is the same type as every abacus package's InvalidError.
type InvalidError = invalid.Error

func (o Options) withDefaults() (Options, error) {
	// Rate is a float; every other number is checked at once.
	if err := invalid.NonNegative(ErrInvalid, "Options", o); err != nil {
		return o, err
	}
	switch {
	case o.Skew > 0 && o.Skew <= 1:
		return o, invalid.New(ErrInvalid, "Options.Skew", o.Skew, "a Zipf exponent must be above 1 (negative: uniform)")
	case o.Rate < 0:
		return o, invalid.New(ErrInvalid, "Options.Rate", o.Rate, "must not be negative (zero means the default)")
	}
	for _, iv := range o.Intervals {
		if iv <= 0 {
			return o, invalid.New(ErrInvalid, "Options.Intervals", o.Intervals, "must all be positive")
		}
	}
	if o.Keys == 0 {
		o.Keys = 1000
	}
	if o.Skew == 0 {
		o.Skew = 1.1
	}
	if o.Goroutines == 0 {
		o.Goroutines = 8
	}
	if o.Rate == 0 {
		o.Rate = 200_000
	}
	if len(o.Intervals) == 0 {
		o.Intervals = DefaultIntervals
	}
	if o.Duration == 0 {
		o.Duration = 2 * time.Second
	}
	if o.MinFlushes == 0 {
		o.MinFlushes = 3
	}
	if o.Probes == 0 {
		o.Probes = 2
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, nil
}

// stepDuration is how long the step for interval iv measures.
func (o Options) stepDuration(iv time.Duration) time.Duration {
	return max(o.Duration, time.Duration(o.MinFlushes)*iv)
}
