// Package logtest captures what a package logs through a *slog.Logger, so
// that tests can check its lifecycle events: which were logged, how many
// times, at which level, with which attributes.
package logtest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Record is one captured event; Attrs holds its attributes, those the
// logger was built With included, as their values' text.
type Record struct {
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

// String formats r for a test failure, like slog's text handler.
func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "level=%s msg=%q", r.Level, r.Message)
	for k, v := range r.Attrs {
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// Recorder captures every event logged through its Logger, at every
// level. It is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	records []Record // guarded by mu
}

// Logger returns a logger that records into r.
func (r *Recorder) Logger() *slog.Logger { return slog.New(&handler{r: r}) }

// Records returns the events captured so far, in order.
func (r *Recorder) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.records...)
}

// Find returns the events with message msg.
func (r *Recorder) Find(msg string) []Record {
	var found []Record
	for _, rec := range r.Records() {
		if rec.Message == msg {
			found = append(found, rec)
		}
	}
	return found
}

// Dump formats every event captured, one a line, for a test failure.
func (r *Recorder) Dump() string {
	var b strings.Builder
	for _, rec := range r.Records() {
		b.WriteString(rec.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// handler is the slog.Handler behind Recorder.Logger. Groups are not
// kept apart: no abacus package logs any.
type handler struct {
	r     *Recorder
	attrs []slog.Attr
}

func (h *handler) Enabled(context.Context, slog.Level) bool { return true }

func (h *handler) Handle(_ context.Context, rec slog.Record) error {
	out := Record{Level: rec.Level, Message: rec.Message, Attrs: make(map[string]string, len(h.attrs)+rec.NumAttrs())}
	for _, a := range h.attrs {
		out.Attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		out.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.r.mu.Lock()
	h.r.records = append(h.r.records, out)
	h.r.mu.Unlock()
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &handler{r: h.r, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *handler) WithGroup(string) slog.Handler { return h }

var _ slog.Handler = (*handler)(nil)
