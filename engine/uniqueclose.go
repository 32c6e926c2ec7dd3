package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// UniqueKeyError reports a unique count whose key Redis refused: it holds
// something other than a HyperLogLog. Its registers are kept and sent
// again after a backoff that doubles with every refusal, up to
// Options.MaxKeyBackoff (Flush and Close send them at once); other
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
// for ctx to end, and adds the unique counts with registers left
// unwritten to err, Close's error for the counters: into its
// *UnflushedError, or a new one.
func (e *Engine) uniquesUnflushed(ctx context.Context, closed <-chan error, err error) error {
	var why error
	select {
	case why = <-closed:
	case <-ctx.Done():
		why = fmt.Errorf("engine: close: %w", ctx.Err())
	}
	u := &UnflushedError{}
	e.uniques.mu.Lock()
	all := e.uniques.all
	e.uniques.mu.Unlock()
	for _, x := range all {
		if n, inDoubt := x.unwritten(); n > 0 {
			u.Uniques++
			u.Registers += n
			u.RegistersInDoubt += inDoubt
			if len(u.UniqueNames) < 10 {
				u.UniqueNames = append(u.UniqueNames, x.name)
			}
		}
	}
	if u.Uniques == 0 {
		return err
	}
	if why == nil {
		why = errors.New("added while Close ran")
	}
	var counters *UnflushedError
	switch {
	case errors.As(err, &counters):
		counters.Uniques, counters.Registers, counters.RegistersInDoubt, counters.UniqueNames =
			u.Uniques, u.Registers, u.RegistersInDoubt, u.UniqueNames
		counters.Err = errors.Join(counters.Err, why)
		return err
	case err == nil:
		u.Err = why
		return u
	default:
		u.Err = why
		return errors.Join(err, u)
	}
}
