package lease

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestAutoRenew(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	// A TTL of seconds, renewed often: only a watchdog starved for nearly
	// the whole TTL could lose the lease, not a busy machine's hiccup.
	const ttl = 2 * time.Second
	l := mustAcquire(t, rdb, "job", ttl, Options{
		KeyPrefix: redistest.Prefix(t), AutoRenew: true, RenewInterval: 50 * time.Millisecond,
	})
	acquired := time.Now() // after Redis set the first TTL
	first := l.Deadline()
	// Several renewals, and the lease outlives its first TTL.
	until(t, "4 renewals and the first TTL to pass", func() bool {
		return (l.Stats().Renewals >= 4 && time.Since(acquired) > ttl) || l.Err() != nil
	})
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

// TestStaleOwner partitions a renewing holder from Redis with a blackhole.
// Its context must end before anyone else can acquire, no later than a TTL
// after its last confirmed renewal; another client gets the lease only once
// the key expired in Redis; and the stale holder's Refresh and Release
// fail with ErrExpired without touching the new owner's lease.
func TestStaleOwner(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	direct := srv.Client(t)
	proxy := faultproxy.New(t, srv.Addr)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	t.Cleanup(func() { viaProxy.Close() })
	ctx := context.Background()

	const ttl = time.Second
	o := Options{
		KeyPrefix:     redistest.Prefix(t),
		AutoRenew:     true,
		RenewInterval: 100 * time.Millisecond,
		// Wide enough for timer latency on a loaded test machine: the
		// ordering checked below must not depend on scheduling luck.
		SafetyMargin:  150 * time.Millisecond,
		MaxRetryDelay: 5 * time.Millisecond,
	}
	holder := mustAcquire(t, viaProxy, "job", ttl, o)
	until(t, "2 renewals", func() bool { return holder.Stats().Renewals >= 2 })

	proxy.Blackhole(true)
	// Every renewal confirmed from now on was sent before this instant.
	partitioned := time.Now()

	type acquired struct {
		l          *Lease
		err        error
		holderDone bool // whether the holder's context had ended by then
	}
	got := make(chan acquired, 1)
	go func() {
		l, err := Acquire(ctx, direct, "job", ttl, o)
		a := acquired{l: l, err: err}
		select {
		case <-holder.Done():
			a.holderDone = true
		default:
		}
		got <- a
	}()
	a := <-got
	if a.err != nil {
		t.Fatalf("contender's Acquire = %v", a.err)
	}
	owner := a.l
	defer owner.Release(ctx)
	if !a.holderDone {
		t.Fatal("contender acquired while the stale holder's context was still live")
	}
	wantErr(t, "stale holder's Err", holder.Err(), ErrExpired)
	if limit := partitioned.Add(ttl); holder.Deadline().After(limit) {
		t.Errorf("holder's deadline %v is after last confirmed renewal + TTL (≤ %v)", holder.Deadline(), limit)
	}
	// The key still held the holder's token when the contender started
	// (nobody released it), so the contender had to wait for Redis to
	// expire it; the fence shows nobody got in between.
	if owner.Stats().Attempts < 2 || owner.Fence() != holder.Fence()+1 {
		t.Errorf("contender attempts %d, fence %d; want ≥2 attempts and fence %d",
			owner.Stats().Attempts, owner.Fence(), holder.Fence()+1)
	}

	proxy.Blackhole(false)
	until(t, "the holder's client to reconnect", func() bool { return viaProxy.Ping(ctx).Err() == nil })
	wantErr(t, "stale Refresh", holder.Refresh(ctx), ErrExpired)
	err := holder.Release(ctx)
	// Exactly this message: the token-checked delete ran and found the new
	// owner's token, rather than failing on the network ("; delete: …").
	if want := `release "job": lease: expired before release`; err == nil || err.Error() != want {
		t.Errorf("stale Release = %v; want %s", err, want)
	}
	if v, err := direct.Get(ctx, owner.Key()).Result(); err != nil || v != owner.Token() {
		t.Errorf("after the stale Release, GET = %q, %v; want the new owner's token", v, err)
	}
	if err := owner.Refresh(ctx); err != nil || owner.Err() != nil {
		t.Errorf("new owner's Refresh = %v, Err = %v; want nil, nil", err, owner.Err())
	}
}
