package lease

import (
	"context"
	"log/slog"
	"time"
)

// watch is the auto-renew goroutine started with Options.AutoRenew. It
// refreshes the lease every RenewInterval until the lease ends.
//
// It never decides expiry itself: the deadline timer does, so a renewal
// stuck on a dead connection cannot delay the loss signal. Each renewal's
// context ends at the local deadline, after which success no longer matters.
func (l *Lease) watch() {
	every := l.cfg.RenewInterval
	// After a failed renewal (network, timeout) retry sooner: the deadline
	// is at least TTL-margin-interval away, room for a few more tries.
	retry := max(every/4, time.Millisecond)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(l.ctx, time.Until(l.Deadline()))
		err := l.Refresh(ctx)
		cancel()
		switch {
		case l.Err() != nil:
			return
		case err != nil:
			l.log(slog.LevelWarn, "lease renewal failed; retrying", "err", err, "retry", retry, "deadline", l.Deadline())
			t.Reset(retry)
		default:
			t.Reset(every)
		}
	}
}
