package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
)

func TestRefreshAndTTL(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	clock := newFakeClock()
	l := mustAcquire(t, rdb, "job", time.Minute, Options{KeyPrefix: redistest.Prefix(t), Now: clock.Now})
	if want := clock.Now().Add(time.Minute - 602*time.Millisecond); !l.Deadline().Equal(want) {
		t.Errorf("Deadline = %v; want send time + TTL - margin = %v", l.Deadline(), want)
	}
	// Shorten the key behind the lease's back; Refresh must restore it.
	rdb.PExpire(ctx, l.Key(), time.Second)
	clock.Advance(10 * time.Second)
	if err := l.Refresh(ctx); err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	if d, err := l.TTL(ctx); err != nil || d <= time.Second || d > time.Minute {
		t.Errorf("TTL after Refresh = %v, %v; want (1s, 1m]", d, err)
	}
	if want := clock.Now().Add(time.Minute - 602*time.Millisecond); !l.Deadline().Equal(want) {
		t.Errorf("Deadline after Refresh = %v; want %v", l.Deadline(), want)
	}
	// Three scripts, each one round trip, or two the first time a server
	// runs it (EVALSHA, NOSCRIPT, EVAL).
	if st := l.Stats(); st.Renewals != 1 || st.RoundTrips < 3 || st.RoundTrips > 6 {
		t.Errorf("Stats = %+v; want 1 renewal, 3 to 6 round trips", st)
	}
}

func TestReleaseOutcomes(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	tests := []struct {
		name     string
		before   func(*Lease, *fakeClock) // what happens while the lease is held
		release  error                    // Release's error
		cause    error                    // context.Cause afterwards
		keyAfter bool                     // whether our key survives Release
	}{
		{"held", func(*Lease, *fakeClock) {}, nil, ErrReleased, false},
		{"released twice", func(l *Lease, _ *fakeClock) { l.Release(ctx) }, ErrReleased, ErrReleased, false},
		{"deleted behind our back", func(l *Lease, _ *fakeClock) { rdb.Del(ctx, l.Key()) }, ErrLost, ErrReleased, false},
		{"deadline passed, key still ours", func(_ *Lease, c *fakeClock) { c.Advance(time.Hour) }, ErrExpired, ErrExpired, false},
		{"lost on refresh", func(l *Lease, _ *fakeClock) {
			rdb.Set(ctx, l.Key(), "someone else", time.Minute)
			wantErr(t, "Refresh of an overwritten lease", l.Refresh(ctx), ErrLost)
		}, ErrLost, ErrLost, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			l := mustAcquire(t, rdb, tt.name, time.Minute, Options{KeyPrefix: prefix, Now: clock.Now})
			tt.before(l, clock)
			err := l.Release(ctx)
			if tt.release == nil && err != nil {
				t.Fatalf("Release = %v; want nil", err)
			}
			if tt.release != nil {
				wantErr(t, "Release", err, tt.release)
			}
			select {
			case <-l.Done():
			default:
				t.Fatal("Done not closed after Release")
			}
			if !errors.Is(l.Err(), tt.cause) || !errors.Is(context.Cause(l.Context()), tt.cause) {
				t.Errorf("Err = %v, Cause = %v; want %v", l.Err(), context.Cause(l.Context()), tt.cause)
			}
			n, _ := rdb.Exists(ctx, l.Key()).Result()
			if (n == 1) != tt.keyAfter {
				t.Errorf("key exists after Release: %v; want %v", n == 1, tt.keyAfter)
			}
			wantErr(t, "Refresh after Release", l.Refresh(ctx), tt.cause)
			_, err = l.TTL(ctx)
			wantErr(t, "TTL after Release", err, tt.cause)
		})
	}
}

func TestRefreshAfterDeadline(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	clock := newFakeClock()
	l := mustAcquire(t, rdb, "job", time.Minute, Options{KeyPrefix: redistest.Prefix(t), Now: clock.Now})
	// Another owner took over after the key expired in Redis.
	rdb.Set(ctx, l.Key(), "new owner", time.Minute)
	clock.Advance(time.Hour)
	wantErr(t, "Refresh after the deadline", l.Refresh(ctx), ErrExpired)
	wantErr(t, "Release after the deadline", l.Release(ctx), ErrExpired)
	if v, _ := rdb.Get(ctx, l.Key()).Result(); v != "new owner" {
		t.Errorf("new owner's key = %q; want it untouched", v)
	}
}

func TestLocalDeadlineEndsLease(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	l := mustAcquire(t, rdb, "job", 50*time.Millisecond, Options{KeyPrefix: redistest.Prefix(t)})
	<-l.Done()
	wantErr(t, "Err after the deadline", l.Err(), ErrExpired)
	wantErr(t, "Release after the deadline", l.Release(ctx), ErrExpired)
}
