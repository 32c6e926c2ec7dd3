package queue

import (
	"context"
	"log/slog"
)

// log sends a lifecycle event to Options.Logger, if any, with the queue's
// name (q.logger carries it).
func (q *Queue) log(level slog.Level, msg string, args ...any) {
	if q.logger != nil {
		q.logger.Log(context.Background(), level, msg, args...)
	}
}
