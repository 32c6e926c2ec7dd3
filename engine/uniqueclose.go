package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// UniqueKeyError reports a unique count whose key Redis refused: it holds
// something other than a HyperLogLog. Its registers are kept and sent
// again after a backoff that doubles with every refusal, up to
// Options.MaxKeyBackoff (FlushUniques and Close send them at once); other
// counts are not affected.
type UniqueKeyError struct {
	Name     string
	Refusals int   // consecutive refusals of the key, this one included
	Err      error // wraps flush.ErrWrongType and Redis' message
}

func (e *UniqueKeyError) Error() string {
	return fmt.Sprintf("engine: unique count %q refused %d times: %v", e.Name, e.Refusals, e.Err)
}

func (e *UniqueKeyError) Unwrap() error { return e.Err }

// UnflushedUniquesError is returned by Close, joined with any
// *UnflushedError, when registers of unique counts could not be written
// before its context ended (or Redis refused their keys). They are lost
// when the process exits: the counts miss the members that raised them.
type UnflushedUniquesError struct {
	Keys      int      // unique counts with unwritten registers
	Registers int      // their unwritten registers
	InDoubt   int      // the part of Registers sent and not confirmed: Redis may have merged them
	Names     []string // up to 10 of them, for the log
	Err       error    // why: the last flush error, or ctx's
}

func (e *UnflushedUniquesError) Error() string {
	return fmt.Sprintf("engine: %d unique counts (%d registers, %d of them in doubt) not flushed, e.g. %s: %v",
		e.Keys, e.Registers, e.InDoubt, strings.Join(e.Names, ", "), e.Err)
}

func (e *UnflushedUniquesError) Unwrap() error { return e.Err }

// closeUniques stops the uniques' writer and starts their final flush,
// whose result Close collects with uniquesUnflushed.
func (e *Engine) closeUniques(ctx context.Context) <-chan error {
	result := make(chan error, 1)
	go func() {
		e.uniques.cancel()
		<-e.uniques.done
		result <- e.finalFlushUniques(ctx)
	}()
	return result
}

// finalFlushUniques flushes until no count has registers left to write,
// backing off between failures, until ctx ends or only refused keys are
// left, which retrying cannot help.
func (e *Engine) finalFlushUniques(ctx context.Context) error {
	backoff := e.opts.FlushInterval
	for {
		refused, failed := e.flushUniques(ctx, true)
		if failed == nil {
			if len(refused) > 0 {
				return errors.Join(refused...)
			}
			if !e.anyUniqueDirty() {
				return nil
			}
			continue // an Add that passed the open check before Close landed after the flush took
		}
		if !sleepBackoff(ctx, &backoff) {
			return failed
		}
	}
}

// sleepBackoff waits *backoff and doubles it, up to a second, for the
// retries of a final flush; it returns false at once if ctx ends first.
func sleepBackoff(ctx context.Context, backoff *time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(*backoff):
		*backoff = min(2**backoff, time.Second)
		return true
	}
}

func (e *Engine) anyUniqueDirty() bool {
	e.uniques.mu.Lock()
	all := e.uniques.all
	e.uniques.mu.Unlock()
	for _, u := range all {
		if u.sketch.Dirty() {
			return true
		}
	}
	return false
}

// uniquesUnflushed waits for the final flush started by closeUniques, or
// for ctx to end, and returns err, Close's error for the counters, joined
// with an *UnflushedUniquesError if any count has registers left unwritten.
func (e *Engine) uniquesUnflushed(ctx context.Context, closed <-chan error, err error) error {
	u := &UnflushedUniquesError{}
	select {
	case u.Err = <-closed:
	case <-ctx.Done():
		u.Err = fmt.Errorf("engine: close: %w", ctx.Err())
	}
	e.uniques.mu.Lock()
	all := e.uniques.all
	e.uniques.mu.Unlock()
	for _, x := range all {
		if n, inDoubt := x.unwritten(); n > 0 {
			u.Keys++
			u.Registers += n
			u.InDoubt += inDoubt
			if len(u.Names) < 10 {
				u.Names = append(u.Names, x.name)
			}
		}
	}
	switch {
	case u.Keys == 0:
		return err
	case u.Err == nil:
		u.Err = errors.New("added while Close ran")
	}
	if err == nil {
		return u
	}
	return errors.Join(err, u)
}
