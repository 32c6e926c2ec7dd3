package lease

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/logtest"
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

// failedScripts is a go-redis hook counting the scripts (EVALSHA, EVAL)
// that came back with an error: on a client that only a lease's watchdog
// uses, its failed renewals, and the NOSCRIPT answers that make it send a
// script's body.
type failedScripts struct{ n atomic.Int64 }

func (f *failedScripts) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *failedScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if name := cmd.Name(); err != nil && (name == "evalsha" || name == "eval") {
			f.n.Add(1)
		}
		return err
	}
}

func (f *failedScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

var _ redis.Hook = (*failedScripts)(nil)

// TestAutoRenewLogsOncePerSpell cuts a renewing holder off from Redis
// (connections reset and refused) until several renewals failed, then
// lets it back: the spell is logged once when it starts and once when a
// renewal succeeds again, with the number of renewals that failed, and
// the lease, whose TTL outlasts the outage, is still held.
func TestAutoRenewLogsOncePerSpell(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := faultproxy.New(t, srv.Addr)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	t.Cleanup(func() { viaProxy.Close() })
	var failed failedScripts
	viaProxy.AddHook(&failed) // before any command: AddHook is not safe alongside them
	ctx := context.Background()
	var rec logtest.Recorder
	l := mustAcquire(t, viaProxy, "job", 30*time.Second, Options{
		KeyPrefix: redistest.Prefix(t), AutoRenew: true, RenewInterval: 100 * time.Millisecond, Logger: rec.Logger(),
	})
	// Renewed once, so that the refresh script is cached: from here on
	// every failed script is a failed renewal.
	until(t, "a renewal", func() bool { return l.Stats().Renewals >= 1 })
	before := failed.n.Load()

	const spell = 5
	proxy.Refuse(true)
	proxy.CutAll()
	until(t, fmt.Sprintf("%d failed renewals", spell), func() bool { return failed.n.Load()-before >= spell })
	proxy.Refuse(false)
	until(t, "the recovery logged", func() bool { return len(rec.Find("lease renewal recovered")) > 0 })

	fence := strconv.FormatInt(l.Fence(), 10)
	rec.Want(t, 1, slog.LevelWarn, "lease renewal failing; retrying", "lease", "job", "fence", fence, "retry_in", "25ms")
	rec.Want(t, 1, slog.LevelInfo, "lease renewal recovered", "lease", "job", "fence", fence,
		"failures", strconv.FormatInt(failed.n.Load()-before, 10))
	if err := l.Err(); err != nil {
		t.Fatalf("lease ended during a short outage: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release = %v", err)
	}
}
