package queue_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/redisinfo"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/queue"
)

// pair is a master and a replica that replicates from it through a fault
// proxy, so that a test can pause the replication link.
type pair struct {
	master, replica *redistest.Server
	link            *faultproxy.Proxy
	rdb             *redis.Client // the master
}

func startPair(t testing.TB) *pair {
	t.Helper()
	// A full sync would otherwise wait 5s for more replicas to share it.
	nodelay := []string{"--repl-diskless-sync-delay", "0"}
	p := &pair{master: redistest.Start(t, redistest.Options{Args: nodelay})}
	p.link = faultproxy.New(t, p.master.Addr)
	host, port, _ := net.SplitHostPort(p.link.Addr())
	p.replica = redistest.Start(t, redistest.Options{Args: append([]string{"--replicaof", host, port}, nodelay...)})
	p.rdb = p.master.Client(t)
	p.waitLinked(t)
	return p
}

// waitLinked waits until the master has its replica online.
func (p *pair) waitLinked(t testing.TB) { waitReplicaOnline(t, p.rdb) }

// waitReplicaOnline waits until the master behind c has one replica online.
func waitReplicaOnline(t testing.TB, c *redis.Client) {
	t.Helper()
	redistest.WaitFor(t, "replica online", func() bool {
		info, _ := c.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	})
}

// pushAcked pushes bodies, retrying under the same IDs until a Push is
// acknowledged: a loaded machine may take longer than a short
// ReplicaTimeout to replicate, and the tests' subject is what happens next.
func pushAcked(t *testing.T, q *queue.Queue, bodies ...[]byte) []queue.ID {
	t.Helper()
	ids, err := q.Push(context.Background(), bodies...)
	if err != nil {
		until(t, "a push acknowledged", func() bool {
			return q.PushWithIDs(context.Background(), ids, bodies...) == nil
		})
	}
	return ids
}

// waits returns how many WAIT commands the server behind c has run since
// its stats were last reset.
func waits(t *testing.T, c *redis.Client) int {
	t.Helper()
	s, err := redisinfo.Read(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return int(s.Calls["wait"])
}

// TestPushWaitsForReplicas checks who pays for WAIT: by default (auto) a
// Push WAITs, once per call however many messages, when the master has a
// replica, and not when it has none; -1 never WAITs.
func TestPushWaitsForReplicas(t *testing.T) {
	p := startPair(t)
	alone := redistest.Start(t, redistest.Options{}).Client(t)
	tests := []struct {
		what     string
		rdb      *redis.Client
		replicas int
		want     int // WAITs for 3 Push calls
	}{
		{"auto, no replica", alone, 0, 0},
		{"auto, one replica", p.rdb, 0, 3},
		{"never, one replica", p.rdb, -1, 0},
		{"fixed 1, one replica", p.rdb, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			ctx := context.Background()
			// A generous ReplicaTimeout: the subject is the count of WAITs,
			// not whether a loaded machine replicates within 1s.
			q := newQueue(t, tt.rdb, queue.Options{Replicas: tt.replicas, PushBatch: 2, ReplicaTimeout: 4 * time.Second})
			if err := tt.rdb.ConfigResetStat(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := q.Push(ctx, []byte("a"), []byte("b"), []byte("c")); err != nil {
					t.Fatalf("Push = %v; want nil", err)
				}
			}
			if got := waits(t, tt.rdb); got != tt.want {
				t.Fatalf("3 Push calls of 3 messages (Replicas %d) ran %d WAITs; want %d", tt.replicas, got, tt.want)
			}
		})
	}
}

// TestPushNotReplicated: while the replica cannot acknowledge (its link
// paused, or the replica stopped, which auto mode does not mistake for "no
// replica"), Push returns a *ReplicationError, not nil, with the IDs. A
// retry with PushWithIDs succeeds once the replica is back, and every copy
// of the message is delivered under its one ID.
func TestPushNotReplicated(t *testing.T) {
	tests := []struct {
		what          string
		fault, repair func(p *pair)
	}{
		{"link paused", func(p *pair) { p.link.Blackhole(true) }, func(p *pair) { p.link.Blackhole(false) }},
		{"replica stopped", func(p *pair) { p.replica.Stop() }, func(p *pair) { p.replica.Restart() }},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			p := startPair(t)
			ctx := context.Background()
			q := newQueue(t, p.rdb, fast(queue.Options{ReplicaTimeout: 100 * time.Millisecond}))
			before := pushAcked(t, q, []byte("before"))
			tt.fault(p)
			ids, err := q.Push(ctx, []byte("during"))
			var re *queue.ReplicationError
			if !errors.As(err, &re) || !errors.Is(err, queue.ErrNotReplicated) || re.Acked != 0 || re.Want != 1 || len(ids) != 1 {
				t.Fatalf("Push with the replica %s = %v, %v; want 1 ID and a *ReplicationError, 0 of 1 acknowledged", tt.what, ids, err)
			}
			tt.repair(p)
			until(t, "a retried push acknowledged", func() bool {
				err := q.PushWithIDs(ctx, ids, []byte("during"))
				if err != nil && !errors.Is(err, queue.ErrNotReplicated) {
					t.Logf("PushWithIDs while the replica comes back: %v", err)
				}
				return err == nil
			})
			n := int(stats(t, q).Ready)
			got := collect(t, q, n)
			for _, id := range got["before"] {
				if id != before[0] {
					t.Errorf("before delivered as %v; want only %v", id, before[0])
				}
			}
			// The refused push reached the master: two copies at least, one ID.
			if len(got["during"]) < 2 {
				t.Errorf("during delivered %d times; want the refused push and the retry", len(got["during"]))
			}
			for _, id := range got["during"] {
				if id != ids[0] {
					t.Errorf("during delivered as %v; want only %v", id, ids[0])
				}
			}
		})
	}
}

// collect consumes n messages from q and returns the IDs each body was
// delivered with.
func collect(t *testing.T, q *queue.Queue, n int) map[string][]queue.ID {
	t.Helper()
	var mu sync.Mutex
	got := map[string][]queue.ID{}
	handled := 0
	stop := consume(t, q, func(ctx context.Context, m queue.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got[string(m.Body)] = append(got[string(m.Body)], m.ID)
		handled++
		return nil
	})
	until(t, strconv.Itoa(n)+" messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled >= n
	})
	stop()
	return got
}

// TestLossyFailoverKeepsAcknowledgedPushes simulates the failover of the
// issue: pushers run while the replica's link is cut (it lags), the replica
// is promoted (REPLICAOF NO ONE) and the old master keeps accepting
// pushes. Every message whose Push returned nil is on the promoted replica.
// A control queue with Replicas -1, pushed alongside, loses messages whose
// Push returned nil: the loss WAIT prevents.
func TestLossyFailoverKeepsAcknowledgedPushes(t *testing.T) {
	p := startPair(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	opts := fast(queue.Options{Prefix: prefix, ReplicaTimeout: 100 * time.Millisecond})
	q := newQueue(t, p.rdb, opts)
	never := opts
	never.Replicas = -1
	control, err := queue.New(p.rdb, "control", never)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[uint32]queue.ID{} // guarded by mu
	var controlAcked []uint32      // guarded by mu
	refused := 0                   // guarded by mu
	var seq atomic.Uint32
	paused := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for after := 0; after < 5; {
				select {
				case <-paused:
					after++ // pushes that start after the link was cut
				default:
				}
				lo := int(seq.Add(8) - 8)
				bodies := seqRange(lo, lo+8)
				ids, err := q.Push(ctx, bodies...)
				cerr := control.PushWithIDs(ctx, ids, bodies...)
				mu.Lock()
				switch {
				case err == nil && after > 0:
					t.Errorf("Push started after the link was cut returned nil")
				case err == nil:
					for i, id := range ids {
						acked[uint32(lo+i)] = id
					}
				case errors.Is(err, queue.ErrNotReplicated):
					refused++
				default:
					t.Errorf("Push = %v; want nil or ErrNotReplicated", err)
				}
				if cerr != nil {
					t.Errorf("control Push = %v; want nil (it never waits)", cerr)
				}
				for i := range bodies {
					controlAcked = append(controlAcked, uint32(lo+i))
				}
				mu.Unlock()
			}
		})
	}
	until(t, "pushes under way", func() bool { return seq.Load() > 2000 })
	p.link.Blackhole(true)
	close(paused)
	wg.Wait()

	promoted := p.replica.Client(t)
	if err := promoted.ReplicaOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Push(ctx, []byte("to the old master")); !errors.Is(err, queue.ErrNotReplicated) {
		t.Fatalf("Push to the old master after the promotion = %v; want ErrNotReplicated", err)
	}
	onOld, _ := p.rdb.LLen(ctx, q.Keys().Ready).Result()

	// What Sentinel does next: the old master follows the new one, and
	// drops what it alone had.
	if err := p.rdb.ReplicaOf(ctx, "127.0.0.1", strconv.Itoa(p.replica.Port)).Err(); err != nil {
		t.Fatal(err)
	}
	waitReplicaOnline(t, promoted)
	nq := newQueue(t, promoted, opts)
	n, err := promoted.LLen(ctx, nq.Keys().Ready).Result()
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, nq, int(n))
	lost := 0
	for s, id := range acked {
		ids := got[string(binary.BigEndian.AppendUint32(nil, s))]
		if len(ids) == 0 || ids[0] != id {
			lost++
		}
	}
	t.Logf("%d messages acknowledged, %d refused (in %d calls); the promoted replica had %d, the old master %d", len(acked), refused*8, refused, n, onOld)
	if lost > 0 {
		t.Errorf("%d of %d messages whose Push returned nil are not on the promoted replica", lost, len(acked))
	}

	have := map[uint32]bool{}
	entries, err := promoted.LRange(ctx, control.Keys().Ready, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		_, body, _ := queue.Decode([]byte(e))
		have[binary.BigEndian.Uint32(body)] = true
	}
	controlLost := 0
	for _, s := range controlAcked {
		if !have[s] {
			controlLost++
		}
	}
	t.Logf("control (Replicas -1): %d of %d messages whose Push returned nil lost", controlLost, len(controlAcked))
	if controlLost == 0 {
		t.Errorf("the control queue lost nothing: the failover was not lossy, so the test proved nothing")
	}
}

// TestTakeWaitsForReplicas: a consumer or Drain does not hand a handler
// messages it took from a master whose replica did not acknowledge the
// take (as a demoted master cannot); it reports ErrNotReplicated, retries,
// and handles them once the replica is back.
func TestTakeWaitsForReplicas(t *testing.T) {
	tests := []struct {
		what string
		run  func(q *queue.Queue, ctx context.Context, h queue.Handler) error
	}{
		{"Consume", (*queue.Queue).Consume},
		{"Drain", func(q *queue.Queue, ctx context.Context, h queue.Handler) error {
			for {
				// Again if the lease is lost: its refresh waits for the
				// replica too.
				if err := q.Drain(ctx, h); err == nil || ctx.Err() != nil {
					return err
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			p := startPair(t)
			var refused atomic.Int64
			q := newQueue(t, p.rdb, fast(queue.Options{
				Prefetch: 1, LeaseTTL: 5 * time.Second, ReplicaTimeout: 100 * time.Millisecond,
				OnError: func(err error) {
					var re *queue.ReplicationError
					if errors.As(err, &re) && strings.Contains(re.Op, "take from") {
						refused.Add(1)
					}
				}}))
			pushAcked(t, q, []byte("first"), []byte("second"))
			var second atomic.Int64
			var cut sync.Once // first may come twice if pushAcked retried
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- tt.run(q, ctx, func(_ context.Context, m queue.Message) error {
					if string(m.Body) == "first" {
						// Cut the link after the leases and the first take.
						cut.Do(func() { p.link.Blackhole(true) })
					} else {
						second.Add(1)
					}
					return nil
				})
			}()
			// Twice: the second take returns the message the first moved.
			until(t, "two takes refused", func() bool { return refused.Load() >= 2 })
			if n := second.Load(); n != 0 {
				t.Fatalf("handler ran on second %d times while the replica's link was cut; want 0", n)
			}
			p.link.Blackhole(false)
			if tt.what == "Drain" {
				if err := <-done; err != nil {
					t.Fatalf("Drain = %v; want nil once the queue is empty", err)
				}
			}
			until(t, "second handled, queue empty", func() bool {
				st := stats(t, q)
				return second.Load() > 0 && st.Ready == 0 && st.Processing == 0
			})
		})
	}
}
