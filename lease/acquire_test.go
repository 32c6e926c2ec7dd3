package lease

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
)

func TestTryAcquire(t *testing.T) {
	rdb := redistest.Client(t)
	o := Options{KeyPrefix: redistest.Prefix(t)}
	ctx := context.Background()

	a := mustAcquire(t, rdb, "job", time.Minute, o)
	if a.Name() != "job" || a.Token() == "" || a.Fence() != 1 || a.Err() != nil {
		t.Fatalf("lease = %q token %q fence %d err %v; want job, a token, 1, nil", a.Name(), a.Token(), a.Fence(), a.Err())
	}
	if got, err := rdb.Get(ctx, a.Key()).Result(); err != nil || got != a.Token() {
		t.Fatalf("GET %s = %q, %v; want the token %q", a.Key(), got, err, a.Token())
	}
	_, err := TryAcquire(ctx, rdb, "job", time.Minute, o)
	wantErr(t, "TryAcquire of a held lease", err, ErrNotObtained)
	other := mustAcquire(t, rdb, "other", time.Minute, o)
	if other.Fence() != 1 {
		t.Errorf("first fence of another name = %d; want 1", other.Fence())
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("Release = %v", err)
	}
	b := mustAcquire(t, rdb, "job", time.Minute, o)
	if b.Fence() != 2 || b.Token() == a.Token() {
		t.Errorf("reacquired fence %d token %q; want 2 and a new token", b.Fence(), b.Token())
	}
	if st := b.Stats(); st.Attempts != 1 || st.RoundTrips != 1 {
		t.Errorf("Stats = %+v; want 1 attempt, 1 round trip", st)
	}
}

func TestAcquireWaitsForRelease(t *testing.T) {
	rdb := redistest.Client(t)
	o := Options{KeyPrefix: redistest.Prefix(t), MaxRetryDelay: 10 * time.Millisecond}
	ctx := context.Background()
	a := mustAcquire(t, rdb, "job", time.Minute, o)

	type result struct {
		l   *Lease
		err error
	}
	got := make(chan result, 1)
	rt := &roundTrips{}
	waiter := sibling(t, rdb)
	waiter.AddHook(rt)
	go func() {
		l, err := Acquire(ctx, waiter, "job", time.Minute, o)
		got <- result{l, err}
	}()
	// Release only once the waiter has been refused a few times.
	until(t, "the waiter to retry", func() bool { return rt.scripts.Load() >= 4 })
	if err := a.Release(ctx); err != nil {
		t.Fatalf("Release = %v", err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("Acquire = %v", r.err)
	}
	if r.l.Fence() <= a.Fence() || r.l.Stats().Attempts < 2 {
		t.Errorf("waiter fence %d after %d; attempts %d; want a greater fence after ≥2 attempts",
			r.l.Fence(), a.Fence(), r.l.Stats().Attempts)
	}
}

func TestAcquireContextCancel(t *testing.T) {
	rdb := redistest.Client(t)
	o := Options{KeyPrefix: redistest.Prefix(t), MinRetryDelay: time.Second, MaxRetryDelay: time.Hour}
	mustAcquire(t, rdb, "job", time.Minute, o)

	tests := []struct {
		name string
		run  func(context.Context, context.CancelFunc) (*Lease, error)
		want error
	}{
		{"cancelled while backing off", func(ctx context.Context, cancel context.CancelFunc) (*Lease, error) {
			rt := &roundTrips{}
			c := sibling(t, rdb)
			c.AddHook(rt)
			// Cancel after the first refusal, when Acquire sleeps for up
			// to MinRetryDelay; it must wake and return at once.
			go func() {
				until(t, "the first attempt", func() bool { return rt.scripts.Load() >= 1 })
				cancel()
			}()
			return Acquire(ctx, c, "job", time.Minute, o)
		}, context.Canceled},
		{"cancelled before", func(ctx context.Context, cancel context.CancelFunc) (*Lease, error) {
			cancel()
			return Acquire(ctx, rdb, "job", time.Minute, o)
		}, context.Canceled},
		{"deadline before", func(ctx context.Context, cancel context.CancelFunc) (*Lease, error) {
			ctx, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
			defer cancel2()
			return Acquire(ctx, rdb, "job", time.Minute, o)
		}, context.DeadlineExceeded},
		{"TryAcquire cancelled", func(ctx context.Context, cancel context.CancelFunc) (*Lease, error) {
			cancel()
			return TryAcquire(ctx, rdb, "free", time.Minute, o)
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			l, err := tt.run(ctx, cancel)
			if l != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, %v; want an error wrapping %v", l, err, tt.want)
			}
			if errors.Is(err, ErrNotObtained) {
				t.Errorf("%v wraps ErrNotObtained; cancellation must be told apart", err)
			}
		})
	}
}

func TestAcquireRecognisesLostReply(t *testing.T) {
	rdb := redistest.Client(t)
	o := Options{KeyPrefix: redistest.Prefix(t)}
	ctx := context.Background()
	c, err := o.resolve(rdb, "job", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// An attempt that reached Redis but whose reply never came back.
	token := rand.Text()
	first, _, err := runScript(ctx, rdb, acquireScript, []string{c.key, c.fenceKey}, token, 60000)
	if err != nil || first != 1 {
		t.Fatalf("acquire script = %d, %v; want 1", first, err)
	}
	var st Stats
	l, err := c.attempt(ctx, rdb, token, &st)
	if err != nil || l.Fence() != first {
		t.Fatalf("retry with the same token = %v; want the lease with fence %d", err, first)
	}
	if _, err := c.attempt(ctx, rdb, rand.Text(), &st); !errors.Is(err, ErrNotObtained) {
		t.Fatalf("attempt with another token = %v; want ErrNotObtained", err)
	}
}

func TestAcquireWaitReplicas(t *testing.T) {
	// No diskless-sync delay: the replica syncs at once, not after 5s.
	primary := redistest.Start(t, redistest.Options{Args: []string{"--repl-diskless-sync-delay", "0"}})
	replica := redistest.Start(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", primary.Addr[len("127.0.0.1:"):]}})
	rdb := primary.Client(t)
	ctx := context.Background()
	until(t, "the replica to sync", func() bool {
		n, _ := rdb.Do(ctx, "WAIT", 1, 10).Int64()
		return n >= 1
	})
	_ = replica
	o := Options{KeyPrefix: redistest.Prefix(t)}

	tests := []struct {
		name     string
		replicas int
		timeout  time.Duration // WAIT returns early once enough replicas ack
		want     error
	}{
		{"acknowledged", 1, 10 * time.Second, nil},
		{"too few replicas", 2, 50 * time.Millisecond, ErrNotReplicated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := o
			o.Replicas, o.ReplicaTimeout = tt.replicas, tt.timeout
			l, err := TryAcquire(ctx, rdb, "job", time.Minute, o)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("TryAcquire with %d replicas = %v", tt.replicas, err)
				}
				if st := l.Stats(); st.RoundTrips > 2 {
					t.Errorf("Stats = %+v; want script and WAIT in one pipeline", st)
				}
				if err := l.Release(ctx); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, "TryAcquire with too few replicas", err, tt.want)
			var re *ReplicationError
			if !errors.As(err, &re) || re.Want != 2 || re.Acked != 1 || !strings.Contains(re.Op, "{job}") {
				t.Errorf("TryAcquire with too few replicas = %v; want a *ReplicationError, 1 of 2 acknowledged, naming the key", err)
			}
			// The refused acquisition must not leave the lease held.
			if n, _ := rdb.Exists(ctx, o.KeyPrefix+"{job}").Result(); n != 0 {
				t.Errorf("lease key exists after ErrNotReplicated")
			}
		})
	}
}
