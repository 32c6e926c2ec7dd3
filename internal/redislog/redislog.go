// Package redislog decides where go-redis' own log goes, for the programs
// of this module (the bench CLI, the examples).
//
// go-redis reports connection trouble it handles itself (a failed dial, a
// pool that found no usable connection) through one process-wide logger,
// which by default prints every line to stderr: during a Redis outage, a
// few lines a second per client. redis.SetLogger replaces that logger for
// the whole process, so only a program's main package may call it (Set
// does); a library never does, since it would override the program's
// choice. abacus' packages report the same failures through their own
// errors and OnError callbacks, so nothing is lost by quieting go-redis.
package redislog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

// The modes of Set, as a program's -redis-log flag takes them.
const (
	// Summary logs the first line of each kind through a *slog.Logger at
	// level Warn, then at most one line of that kind per SummaryEvery, with
	// the count of the lines held back since the last one.
	Summary = "summary"
	// Stderr keeps go-redis' default: every line, to stderr.
	Stderr = "stderr"
	// Off drops every line.
	Off = "off"
)

// Modes lists the modes of Set, for a flag's help text.
const Modes = Summary + ", " + Stderr + " or " + Off

// SummaryEvery is how often Summary logs a line of one kind at most.
const SummaryEvery = 10 * time.Second

// Set routes go-redis' process-wide log as mode says; Summary logs
// through l. It returns an error naming the modes for an unknown mode.
func Set(mode string, l *slog.Logger) error {
	switch mode {
	case Summary:
		redis.SetLogger(NewSummary(l, SummaryEvery))
	case Stderr:
		logging.Enable()
	case Off:
		logging.Disable()
	default:
		return fmt.Errorf("redislog: unknown mode %q (want %s)", mode, Modes)
	}
	return nil
}

// SummaryLogger is a go-redis logger (see redis.SetLogger) that logs the
// first line of each kind, a format of go-redis', and then at most one per
// interval, with a "held_back" attribute counting the lines dropped since
// the last. It is safe for concurrent use.
type SummaryLogger struct {
	l     *slog.Logger
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*kind // guarded by mu; by format, of which go-redis has a few dozen
}

type kind struct {
	logged time.Time // when a line of this kind was last logged
	held   int       // lines dropped since
}

// NewSummary returns a SummaryLogger logging through l at most one line
// of each kind per every.
func NewSummary(l *slog.Logger, every time.Duration) *SummaryLogger {
	return &SummaryLogger{l: l, every: every, now: time.Now, kinds: map[string]*kind{}}
}

// Printf implements go-redis' logging interface.
func (s *SummaryLogger) Printf(ctx context.Context, format string, v ...any) {
	now := s.now()
	s.mu.Lock()
	k := s.kinds[format]
	if k == nil {
		k = &kind{}
		s.kinds[format] = k
	} else if now.Sub(k.logged) < s.every {
		k.held++
		s.mu.Unlock()
		return
	}
	held := k.held
	k.logged, k.held = now, 0
	s.mu.Unlock()

	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	var attrs []slog.Attr
	if held > 0 {
		attrs = append(attrs, slog.Int("held_back", held))
	}
	s.l.LogAttrs(ctx, slog.LevelWarn, "go-redis: "+msg, attrs...)
}
