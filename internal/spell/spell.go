// Package spell logs the failures of a loop that retries (a queue
// consumer, a Drain owner, a lease's watchdog) once per spell of failures
// in a row rather than once per retry: the first failure, then the
// recovery with how many failed and for how long. An outage met by a loop
// that retries every few milliseconds then costs two log events, not
// thousands.
package spell

import (
	"log/slog"
	"time"
)

// Logf sends one event to a package's logger, adding the attributes that
// name what logs it (a queue's name, a lease's name and fence).
type Logf func(level slog.Level, msg string, args ...any)

// Spell tracks the failures in a row of one retrying loop. Create it with
// New; the zero value is not usable. It is not safe for concurrent use:
// each loop has its own.
type Spell struct {
	log       Logf
	failing   string    // message of a spell's first failure (Warn)
	recovered string    // message of its end (Info)
	n         int       // failures since the last success
	since     time.Time // when the first of them happened
}

// New returns a Spell that logs through log the first failure of each
// spell with the message failing, and its end with the message recovered.
func New(log Logf, failing, recovered string) Spell {
	return Spell{log: log, failing: failing, recovered: recovered}
}

// Fail counts a failure. The first of a spell is logged at Warn with err,
// the wait before the retry (retry_in) and args, further key-value pairs.
func (s *Spell) Fail(err error, retryIn time.Duration, args ...any) {
	if s.n++; s.n == 1 {
		s.since = time.Now()
		s.log(slog.LevelWarn, s.failing, append([]any{"err", err, "retry_in", retryIn}, args...)...)
	}
}

// OK ends the spell of failures, if any, logging at Info how many failed
// (failures) and for how long (down_for, since the first of them).
func (s *Spell) OK() {
	if s.n > 0 {
		s.log(slog.LevelInfo, s.recovered, "failures", s.n, "down_for", time.Since(s.since).Round(time.Millisecond))
		s.n = 0
	}
}
