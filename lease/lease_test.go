package lease

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/logtest"
	"github.com/abacus-go/abacus/internal/redistest"
)

func TestRefreshAndTTL(t *testing.T) {
	inBubble(t, testRefreshAndTTL)
}

func testRefreshAndTTL(t *testing.T, rdb *redis.Client) {
	ctx := context.Background()
	l := mustAcquire(t, rdb, "job", time.Minute, Options{KeyPrefix: redistest.Prefix(t)})
	// The bubble's clock stands still during I/O: now is the send time.
	if want := time.Now().Add(time.Minute - 602*time.Millisecond); !l.Deadline().Equal(want) {
		t.Errorf("Deadline = %v; want send time + TTL - margin = %v", l.Deadline(), want)
	}
	// Shorten the key behind the lease's back; Refresh must restore it.
	rdb.PExpire(ctx, l.Key(), time.Second)
	time.Sleep(10 * time.Second)
	if err := l.Refresh(ctx); err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	if d, err := l.TTL(ctx); err != nil || d <= time.Second || d > time.Minute {
		t.Errorf("TTL after Refresh = %v, %v; want (1s, 1m]", d, err)
	}
	if want := time.Now().Add(time.Minute - 602*time.Millisecond); !l.Deadline().Equal(want) {
		t.Errorf("Deadline after Refresh = %v; want %v", l.Deadline(), want)
	}
	// Three scripts, each one round trip, or two the first time a server
	// runs it (EVALSHA, NOSCRIPT, EVAL).
	if st := l.Stats(); st.Renewals != 1 || st.RoundTrips < 3 || st.RoundTrips > 6 {
		t.Errorf("Stats = %+v; want 1 renewal, 3 to 6 round trips", st)
	}
}

func TestReleaseOutcomes(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	tests := []struct {
		name     string
		before   func(*testing.T, *redis.Client, *Lease) // what happens while the lease is held
		release  error                                   // Release's error
		cause    error                                   // context.Cause afterwards
		keyAfter bool                                    // whether our key survives Release
	}{
		{"held", func(*testing.T, *redis.Client, *Lease) {}, nil, ErrReleased, false},
		{"released twice", func(_ *testing.T, _ *redis.Client, l *Lease) { l.Release(ctx) }, ErrReleased, ErrReleased, false},
		{"deleted behind our back", func(_ *testing.T, rdb *redis.Client, l *Lease) { rdb.Del(ctx, l.Key()) }, ErrLost, ErrReleased, false},
		// In the bubble the hour passes at once, and the lease's deadline
		// timer fires on the way, as it would in real time.
		{"deadline passed, key still ours", func(*testing.T, *redis.Client, *Lease) { time.Sleep(time.Hour) }, ErrExpired, ErrExpired, false},
		{"lost on refresh", func(t *testing.T, rdb *redis.Client, l *Lease) {
			rdb.Set(ctx, l.Key(), "someone else", time.Minute)
			wantErr(t, "Refresh of an overwritten lease", l.Refresh(ctx), ErrLost)
		}, ErrLost, ErrLost, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T, rdb *redis.Client) {
				l := mustAcquire(t, rdb, tt.name, time.Minute, Options{KeyPrefix: prefix})
				tt.before(t, rdb, l)
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
		})
	}
}

func TestRefreshAfterDeadline(t *testing.T) {
	inBubble(t, testRefreshAfterDeadline)
}

func testRefreshAfterDeadline(t *testing.T, rdb *redis.Client) {
	ctx := context.Background()
	l := mustAcquire(t, rdb, "job", time.Minute, Options{KeyPrefix: redistest.Prefix(t)})
	// Another owner took over after the key expired in Redis.
	rdb.Set(ctx, l.Key(), "new owner", time.Minute)
	time.Sleep(time.Hour)
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

// TestLoggerSeesTheLoss: a lease lost behind its back is logged at Warn
// with its name, fence and cause.
func TestLoggerSeesTheLoss(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	var rec logtest.Recorder
	l := mustAcquire(t, rdb, "job", time.Minute, Options{KeyPrefix: redistest.Prefix(t), Logger: rec.Logger()})
	rdb.Del(ctx, l.Key())
	wantErr(t, "Refresh of a deleted lease", l.Refresh(ctx), ErrLost)
	rec.Want(t, 1, slog.LevelWarn, "lease ended", "lease", "job", "fence", strconv.FormatInt(l.Fence(), 10), "cause", "lease: lost")
}
