package lease

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Hold runs fn every time this process holds the lease name, until ctx
// ends: it acquires the lease (waiting as Acquire does), calls fn with a
// context that ends when the lease is lost or ctx ends, releases the lease
// when fn returns, and contends again. It is the loop of a process that
// should do some shared work whenever it is the one owner (a reclaimer, a
// rollup): run it in every candidate process and one at a time does the
// work. Use Options.AutoRenew so that a holder keeps the lease while fn
// runs.
//
// Failures to acquire other than ctx ending (bad input, say) go to onErr,
// which may be nil, and are retried after Options.MaxRetryDelay. The loop's
// acquisitions share what they learn about replicas (Options.Replicas
// auto): once one saw a replica, every later one waits for it.
func Hold(ctx context.Context, rdb redis.UniversalClient, name string, ttl time.Duration, opts Options,
	fn func(ctx context.Context, l *Lease), onErr func(error)) {
	retry := opts.MaxRetryDelay
	if retry <= 0 {
		retry = max(DefaultMaxRetryDelay, opts.MinRetryDelay)
	}
	var repl *replication
	for ctx.Err() == nil {
		c, err := opts.resolve(rdb, name, ttl)
		var l *Lease
		if err == nil {
			if repl == nil {
				repl = c.repl
			}
			c.repl = repl
			l, err = c.acquire(ctx, rdb)
		}
		if err != nil {
			if ctx.Err() == nil {
				if onErr != nil {
					onErr(err)
				}
				t := time.NewTimer(retry)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
			continue
		}
		held, cancel := context.WithCancel(l.Context())
		stop := context.AfterFunc(ctx, cancel)
		l.log(slog.LevelInfo, "lease acquired")
		fn(held, l)
		stop()
		cancel()
		// Release even when ctx has ended, so another process takes over
		// without waiting out the TTL.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), ttl)
		if err := l.Release(rctx); err == nil {
			l.log(slog.LevelInfo, "lease released")
		}
		rcancel()
	}
}
