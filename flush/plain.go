package flush

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	for _, d := range fresh {
		if d.Token != "" {
			// A Source's bug: a plain INCRBY would apply every retry.
			panic("flush: a Delta with a Token needs ExactlyOnce mode")
		}
	}
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
	chunk, keyErrs, err = f.registerPlain(ctx, chunk, since)
	if err != nil {
		f.restore(chunk, since) // Redis is failing: the INCRBYs wait too
		return keyErrs, err
	}
	if len(chunk) == 0 {
		return keyErrs, nil
	}
	pl := &f.plain
	pl.encode(f.opts.KeyPrefix, chunk)
	defer pl.release()
	for i := range chunk {
		d, key := &chunk[i], &pl.keys.wire[i]
		pl.incrs = append(pl.incrs, redis.NewIntCmd(ctx, pl.argv("incrby", key, &d.N)...))
		pl.cmds = append(pl.cmds, pl.incrs[i])
		ttl := &f.keyTTLMillis
		if d.TTLMillis != 0 {
			ttl = &d.TTLMillis
		}
		if *ttl > 0 {
			pl.cmds = append(pl.cmds, redis.NewBoolCmd(ctx, pl.argv("pexpire", key, ttl)...))
		}
	}
	pipe := f.rdb.Pipeline()
	pipe.BatchProcess(ctx, pl.cmds...)
	pipe.Exec(ctx) // errors are read per command below
	f.stats.update(func(s *Stats) {
		s.RoundTrips++
		s.Commands += uint64(len(pl.cmds))
	})
	// The applied deltas are moved to the front of chunk, in place: a
	// flush of a big chunk must not copy it per key.
	applied := chunk[:0]
	var retry, refused []Delta
	var causes []error
	for i, d := range chunk { // d is a copy: applied may overwrite chunk[i]
		cerr := pl.incrs[i].Err()
		switch {
		case cerr == nil:
			applied = append(applied, d)
		case isKeyError(cerr):
			refused = append(refused, d)
			causes = append(causes, keyErr(cerr.Error()))
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
		keyErrs = append(keyErrs, f.refused(refused, causes, since)...)
	}
	return keyErrs, err
}

// registerPlain adds the registrations of chunk's deltas (ZADD NX, so
// sending one again is harmless) in a round trip before their INCRBYs, as
// the exactly-once script adds one before its delta: a delta whose
// registration Redis refuses is refused with it, not applied unregistered,
// and one whose reply is lost is restored. It returns the deltas to send,
// the key errors, and the first failure. A chunk with no registration
// costs nothing.
func (f *Flusher) registerPlain(ctx context.Context, chunk []Delta, since time.Time) (rest []Delta, keyErrs []error, err error) {
	var cmds []*redis.IntCmd // per delta with a registration, in order
	var pipe redis.Pipeliner
	for _, d := range chunk {
		if r := d.Register; r != nil {
			if pipe == nil {
				pipe = f.rdb.Pipeline()
			}
			cmds = append(cmds, pipe.ZAddNX(ctx, r.Set, redis.Z{Score: r.Score, Member: r.Member}))
		}
	}
	if pipe == nil {
		return chunk, nil, nil
	}
	pipe.Exec(ctx) // errors are read per command below
	f.stats.update(func(s *Stats) {
		s.RoundTrips++
		s.Commands += uint64(len(cmds))
	})
	rest = chunk[:0] // d is a copy: rest may overwrite chunk[i]
	var retry, refused []Delta
	var causes []error
	for _, d := range chunk {
		if d.Register == nil {
			rest = append(rest, d)
			continue
		}
		cerr := cmds[0].Err()
		cmds = cmds[1:]
		switch {
		case cerr == nil:
			rest = append(rest, d)
		case isKeyError(cerr):
			refused = append(refused, d)
			causes = append(causes, registrationErr(d.Register.Set, cerr.Error()))
		default:
			retry = append(retry, d)
			if err == nil {
				err = fmt.Errorf("ZADD %s: %w", d.Register.Set, classify(cerr))
			}
		}
	}
	f.restore(retry, since)
	if len(refused) > 0 {
		keyErrs = f.refused(refused, causes, since)
	}
	return rest, keyErrs, err
}

// plainPipeline holds what a pipeline of plain INCRBYs is built from,
// reused by the next one, so that it allocates per key only go-redis'
// command.
type plainPipeline struct {
	keys  keyWriter       // the deltas' Redis keys
	args  []any           // the commands' arguments, sliced by argv
	incrs []*redis.IntCmd // per delta, its INCRBY
	cmds  []redis.Cmder   // every command, in order
}

// encode writes the Redis keys of chunk and makes room for its commands'
// arguments: nothing may move once a command points into them.
func (p *plainPipeline) encode(prefix string, chunk []Delta) {
	bytes := 0
	for _, d := range chunk {
		bytes += len(prefix) + len(d.Key)
	}
	p.keys.reset(len(chunk), bytes)
	for _, d := range chunk {
		p.keys.add(prefix, d.Key)
	}
	p.args = slices.Grow(p.args[:0], 6*len(chunk)) // INCRBY and PEXPIRE
}

// argv returns a command's arguments in p.args, without an allocation.
func (p *plainPipeline) argv(args ...any) []any {
	start := len(p.args)
	p.args = append(p.args, args...)
	return p.args[start:len(p.args):len(p.args)]
}

// release drops the pointers the pipeline holds, for the collector.
func (p *plainPipeline) release() {
	clear(p.args)
	clear(p.incrs)
	clear(p.cmds)
	p.args, p.incrs, p.cmds = p.args[:0], p.incrs[:0], p.cmds[:0]
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
