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
	"testing"
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

// Want checks that msg was logged n times, the last of them at level
// with the attributes attrs (key, value pairs, values as text), and
// returns that last one: a zero Record when n is 0.
func (r *Recorder) Want(t testing.TB, n int, level slog.Level, msg string, attrs ...string) Record {
	t.Helper()
	got := r.Find(msg)
	if len(got) != n {
		t.Fatalf("%d events %q; want %d. Log:\n%s", len(got), msg, n, r.Dump())
	}
	if n == 0 {
		return Record{}
	}
	last := got[n-1]
	if last.Level != level {
		t.Errorf("%q logged at %v; want %v", msg, last.Level, level)
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		if v := last.Attrs[attrs[i]]; v != attrs[i+1] {
			t.Errorf("%q has %s=%q; want %q (%v)", msg, attrs[i], v, attrs[i+1], last)
		}
	}
	return last
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
