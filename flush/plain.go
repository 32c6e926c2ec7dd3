package flush

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// flushPlain sends fresh deltas as pipelined INCRBYs (AtLeastOnce). A
// delta whose reply is lost is restored and sent again, so it may be
// applied twice.
func (f *Flusher) flushPlain(ctx context.Context) error {
	fresh, since := f.drain()
	var keyErrs []error
	var lastErr error
	for len(fresh) > 0 {
		n := min(len(fresh), f.opts.PipelineKeys)
		errs, err := f.sendPlain(ctx, fresh[:n], since)
		fresh = fresh[n:]
		keyErrs = append(keyErrs, errs...)
		if err != nil {
			lastErr = err
			f.src.Restore(fresh) // Redis is failing: keep the rest for later
			break
		}
	}
	if lastErr != nil {
		err := &PendingError{Err: lastErr}
		f.report(err)
		return errors.Join(append([]error{err}, keyErrs...)...)
	}
	return errors.Join(keyErrs...)
}

func (f *Flusher) sendPlain(ctx context.Context, chunk []Delta, since time.Time) (keyErrs []error, err error) {
	pipe := f.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(chunk))
	for i, d := range chunk {
		cmds[i] = pipe.IncrBy(ctx, d.Key, d.N)
		if f.opts.KeyTTL > 0 {
			pipe.PExpire(ctx, d.Key, f.opts.KeyTTL)
		}
	}
	commands := len(chunk)
	if f.opts.KeyTTL > 0 {
		commands *= 2
	}
	pipe.Exec(ctx) // errors are read per command below
	f.stats.update(func(s *Stats) {
		s.RoundTrips++
		s.Commands += uint64(commands)
	})
	var applied, retry, refused []Delta
	var msgs []string
	for i, d := range chunk {
		cerr := cmds[i].Err()
		var rerr redis.Error
		switch {
		case cerr == nil:
			applied = append(applied, d)
		case errors.As(cerr, &rerr) && isKeyError(cerr):
			refused = append(refused, d)
			msgs = append(msgs, cerr.Error())
		default:
			// The reply is lost or the server refused the command as a
			// whole: it may or may not have been applied. At-least-once
			// sends it again.
			retry = append(retry, d)
			err = fmt.Errorf("INCRBY %s: %w", d.Key, cerr)
		}
	}
	f.confirmed(applied, since)
	f.src.Restore(retry)
	if len(refused) > 0 {
		keyErrs = f.refused(refused, msgs)
	}
	return keyErrs, err
}

// isKeyError reports whether a server error is about the key's value
// rather than the server's state.
func isKeyError(err error) bool {
	var ke error = keyErr(err.Error())
	return ke == ErrWrongType || ke == ErrNotInteger || ke == ErrOverflow
}
