package queue

import (
	"context"
	"log/slog"
	"time"
)

// log sends a lifecycle event to Options.Logger, if any, with the queue's
// name (q.logger carries it).
func (q *Queue) log(level slog.Level, msg string, args ...any) {
	if q.logger != nil {
		q.logger.Log(context.Background(), level, msg, args...)
	}
}

// spell tracks the failures in a row of a loop that backs off between
// retries (a consumer, a Drain owner), so that the log says when it
// started backing off and when it recovered, not every retry. It is not
// safe for concurrent use: each loop has its own.
type spell struct {
	q     *Queue
	what  string    // "consumer" or "drain", the start of its messages
	n     int       // failures since the last success
	since time.Time // when the first of them happened
}

// fail counts a failure, logging the first of a spell with err and the
// wait before the retry.
func (s *spell) fail(err error, wait time.Duration) {
	if s.n++; s.n == 1 {
		s.since = time.Now()
		s.q.log(slog.LevelWarn, s.what+" failing; backing off", "err", err, "retry_in", wait)
	}
}

// ok ends a spell of failures, if any, logging how many and how long.
func (s *spell) ok() {
	if s.n > 0 {
		s.q.log(slog.LevelInfo, s.what+" recovered", "failures", s.n, "down_for", time.Since(s.since).Round(time.Millisecond))
		s.n = 0
	}
}
