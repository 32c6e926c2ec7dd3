package lease

import (
	"context"
	"time"

	"github.com/abacus-go/abacus/internal/spell"
)

// watch is the auto-renew goroutine started with Options.AutoRenew. It
// refreshes the lease every RenewInterval until the lease ends.
//
// A spell of failed renewals is logged once, at its first failure, and
// again when a renewal succeeds: an outage costs an owner of many leases
// (a queue's consumers) two events per lease, not one per retry.
//
// It never decides expiry itself: the deadline timer does, so a renewal
// stuck on a dead connection cannot delay the loss signal. Each renewal's
// context ends at the local deadline, after which success no longer matters.
func (l *Lease) watch() {
	every := l.cfg.RenewInterval
	// After a failed renewal (network, timeout) retry sooner: the deadline
	// is at least TTL-margin-interval away, room for a few more tries.
	retry := max(every/4, time.Millisecond)
	failures := spell.New(l.log, "lease renewal failing; retrying", "lease renewal recovered")
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
			failures.Fail(err, retry, "deadline", l.Deadline())
			t.Reset(retry)
		default:
			failures.OK()
			t.Reset(every)
		}
	}
}
