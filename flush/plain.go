package flush

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// roundPlain sends fresh deltas as pipelined INCRBYs (AtLeastOnce). A
// delta whose reply is lost is restored and sent again, so it may be
// applied twice. A plain round sends everything it takes: there is never
// more for another round. Unlike a batch, each INCRBY is a go-redis
// command of its own, with its allocations.
func (f *Flusher) roundPlain(ctx context.Context, force bool) (more bool, err error) {
	fresh, since := f.take()
	fresh, keyErrs := f.hold(fresh, since, force)
	var cause error
	for len(fresh) > 0 {
		n := min(len(fresh), f.opts.PipelineKeys)
		chunk := fresh[:n]
		fresh = fresh[n:]
		errs, err := f.sendPlain(ctx, chunk, f.age(chunk, since))
		keyErrs = append(keyErrs, errs...)
		if err != nil {
			cause = err
			f.restore(fresh, f.age(fresh, since)) // Redis is failing: keep the rest for later
			break
		}
	}
	if cause != nil {
		err := &PendingError{Err: cause}
		f.report(err)
		return false, errors.Join(append([]error{err}, keyErrs...)...)
	}
	return false, errors.Join(keyErrs...)
}

func (f *Flusher) sendPlain(ctx context.Context, chunk []Delta, since time.Time) (keyErrs []error, err error) {
	pipe := f.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(chunk))
	commands := len(chunk)
	// The keys are written from one buffer and the deltas through
	// pointers, as a batch's are (see keyArg): no string or boxed value
	// per key, only go-redis' command.
	bytes := 0
	for _, d := range chunk {
		bytes += len(f.opts.KeyPrefix) + len(d.Key)
	}
	f.plainKeys.reset(len(chunk), bytes)
	for _, d := range chunk {
		f.plainKeys.add(f.opts.KeyPrefix, d.Key)
	}
	for i := range chunk {
		d, key := &chunk[i], &f.plainKeys.wire[i]
		if d.Token != "" {
			// A Source's bug: a plain INCRBY would apply every retry.
			panic("flush: a Delta with a Token needs ExactlyOnce mode")
		}
		cmds[i] = redis.NewIntCmd(ctx, "incrby", key, &d.N)
		pipe.Process(ctx, cmds[i])
		ttl := &f.keyTTLMillis
		if d.TTLMillis != 0 {
			ttl = &d.TTLMillis
		}
		if *ttl > 0 {
			pipe.Process(ctx, redis.NewBoolCmd(ctx, "pexpire", key, ttl))
			commands++
		}
		if r := d.Register; r != nil {
			pipe.ZAddNX(ctx, r.Set, redis.Z{Score: r.Score, Member: r.Member})
			commands++
		}
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
		switch {
		case cerr == nil:
			applied = append(applied, d)
		case isKeyError(cerr):
			refused = append(refused, d)
			msgs = append(msgs, cerr.Error())
		default:
			// The reply is lost or the server refused the command as a
			// whole: it may or may not have been applied. At-least-once
			// sends it again.
			retry = append(retry, d)
			if err == nil {
				err = fmt.Errorf("INCRBY %s: %w", f.opts.KeyPrefix+d.Key, classify(cerr))
			}
		}
	}
	f.confirmed(applied, since)
	f.restore(retry, since)
	if len(refused) > 0 {
		keyErrs = f.refused(refused, msgs, since)
	}
	return keyErrs, err
}

// isKeyError reports whether err is a server error about the key's value
// rather than the server's state.
func isKeyError(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	ke := keyErr(err.Error())
	return ke == ErrWrongType || ke == ErrNotInteger || ke == ErrOverflow
}
