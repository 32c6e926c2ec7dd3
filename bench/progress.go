package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress shows which row is being measured, on stderr: rewritten in
// place on a terminal, one line per row otherwise. A nil *progress shows
// nothing.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	i     int
	name  string
	d     time.Duration
}

// newProgress returns a display for total rows of about d each, or nil
// when the whole run is expected to take less than a few seconds.
func newProgress(w *os.File, total int, d time.Duration, quiet bool) *progress {
	if quiet || time.Duration(total)*d < 3*time.Second {
		return nil
	}
	fi, err := w.Stat()
	return &progress{w: w, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0, total: total, d: d}
}

func (p *progress) start(name string) {
	if p == nil {
		return
	}
	p.i++
	p.name = name
	if !p.tty {
		fmt.Fprintf(p.w, "[%d/%d] %s (%v)\n", p.i, p.total, name, p.d)
		return
	}
	p.tick(0)
}

func (p *progress) tick(elapsed time.Duration) {
	if p == nil || !p.tty {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K[%d/%d] %-44s %4.1fs / %v", p.i, p.total, p.name, elapsed.Seconds(), p.d)
}

// note prints a line that is not a row (a final Close, a verification).
func (p *progress) note(msg string) {
	if p == nil {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K[%d/%d] %s: %s", p.i, p.total, p.name, msg)
		return
	}
	fmt.Fprintf(p.w, "       %s\n", msg)
}

func (p *progress) done() {
	if p != nil && p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
