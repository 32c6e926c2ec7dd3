package lease

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
)

func TestAutoRenew(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	ttl := 150 * time.Millisecond
	l := mustAcquire(t, rdb, "job", ttl, Options{KeyPrefix: redistest.Prefix(t), AutoRenew: true})
	first := l.Deadline()
	// Several renewals: the lease outlives its TTL several times over.
	until(t, "5 renewals", func() bool { return l.Stats().Renewals >= 5 || l.Err() != nil })
	if err := l.Err(); err != nil {
		t.Fatalf("lease ended while auto-renewed: %v", err)
	}
	if !l.Deadline().After(first) {
		t.Errorf("Deadline %v not moved past %v by renewals", l.Deadline(), first)
	}
	if v, err := rdb.Get(ctx, l.Key()).Result(); err != nil || v != l.Token() {
		t.Errorf("GET = %q, %v; want our token", v, err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release = %v", err)
	}
}

func TestAutoRenewDetectsLoss(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	// A long TTL: the watchdog, not the deadline, must notice.
	l := mustAcquire(t, rdb, "job", 3*time.Second, Options{
		KeyPrefix: redistest.Prefix(t), AutoRenew: true, RenewInterval: 10 * time.Millisecond,
	})
	rdb.Set(ctx, l.Key(), "usurper", time.Minute)
	<-l.Done()
	wantErr(t, "Err after the key was overwritten", l.Err(), ErrLost)
	if v, _ := rdb.Get(ctx, l.Key()).Result(); v != "usurper" {
		t.Errorf("key = %q; want the usurper's untouched", v)
	}
}
