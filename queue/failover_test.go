package queue_test

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/queue"
)

// failover is one failover of the queue's master, done by a fixture.
type failover struct {
	name string
	do   func(testing.TB)
}

// TestSentinelFailoversLoseNoAcknowledgedPush is the scenario on
// Sentinel (see failoverTest): a SENTINEL FAILOVER, a SIGKILL of the
// master, another SENTINEL FAILOVER.
func TestSentinelFailoversLoseNoAcknowledgedPush(t *testing.T) {
	if testing.Short() {
		t.Skip("three Sentinel failovers")
	}
	g := redistest.StartSentinel(t, redistest.SentinelOptions{})
	failoverTest(t, g.Client(t), []failover{
		{"SENTINEL FAILOVER", g.Failover},
		{"master killed", g.KillMaster},
		{"SENTINEL FAILOVER", g.Failover},
	})
}

// TestClusterFailoversLoseNoAcknowledgedPush is the same on a Redis
// Cluster of 3 masters with a replica each, failing over the master of
// the queue's slot: CLUSTER FAILOVER, a SIGKILL, CLUSTER FAILOVER.
func TestClusterFailoversLoseNoAcknowledgedPush(t *testing.T) {
	if testing.Short() {
		t.Skip("three Cluster failovers")
	}
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	rdb := c.Client(t)
	slot, err := rdb.ClusterKeySlot(context.Background(), "{jobs}").Result()
	if err != nil {
		t.Fatal(err)
	}
	r := 0
	for first, last := c.Slots(r); int64(first) > slot || slot > int64(last); first, last = c.Slots(r) {
		r++
	}
	failoverTest(t, rdb, []failover{
		{"CLUSTER FAILOVER", func(t testing.TB) { c.Failover(t, r) }},
		{"master killed", func(t testing.TB) { c.KillMaster(t, r) }},
		{"CLUSTER FAILOVER", func(t testing.TB) { c.Failover(t, r) }},
	})
}

// failoverTest: producers push and consumers consume through rdb, with a
// backlog, while the queue's master fails over (failovers, in order).
// Producers retry a failed Push with PushWithIDs until it returns nil.
// Then every message whose Push returned nil is delivered, every delivery
// of a message carries the ID it was pushed under, and a message delivered
// more than once either had a Push retried or was in a consumer's hands at
// a failover (at most Prefetch per consumer per failover).
func failoverTest(t *testing.T, rdb redis.UniversalClient, failovers []failover) {
	opts := queue.Options{
		LeaseTTL:        2 * time.Second,
		BlockTimeout:    100 * time.Millisecond,
		ReclaimInterval: 200 * time.Millisecond,
		RetireAfter:     5 * time.Second,
		Concurrency:     2,
		Prefetch:        32,
		MaxAttempts:     1000, // redeliveries are the subject here, not dead letters
		ReplicaTimeout:  time.Second,
	}
	q := newQueue(t, rdb, opts)

	type pushed struct {
		id      queue.ID
		acked   bool // a Push or PushWithIDs of it returned nil
		retried bool // a Push of it returned an error first
	}
	var mu sync.Mutex
	msgs := map[uint32]*pushed{}          // guarded by mu
	deliveries := map[uint32][]queue.ID{} // guarded by mu
	handled := 0                          // guarded by mu
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return handled
	}

	// A backlog, so that consumers always have work: on a master a
	// failover demoted they would take and acknowledge messages that the
	// new master then delivers again, unless the take waits.
	const backlog = 50_000
	for lo := 0; lo < backlog; lo += 1000 {
		bodies := seqRange(lo, lo+1000)
		ids, err := q.Push(context.Background(), bodies...)
		// A replica slow to acknowledge on a busy machine: retry under
		// the same IDs, as a producer would.
		for tries := 0; errors.Is(err, queue.ErrNotReplicated) && tries < 100; tries++ {
			err = q.PushWithIDs(context.Background(), ids, bodies...)
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			msgs[uint32(lo+i)] = &pushed{id: id, acked: true}
		}
	}
	var seq atomic.Uint32
	seq.Store(backlog)

	stopConsume := consume(t, q, func(_ context.Context, m queue.Message) error {
		mu.Lock()
		defer mu.Unlock()
		s := binary.BigEndian.Uint32(m.Body)
		deliveries[s] = append(deliveries[s], m.ID)
		handled++
		return nil
	})

	ctx, stopPush := context.WithCancel(context.Background())
	defer stopPush()
	var retries atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				lo := int(seq.Add(8) - 8)
				bodies := seqRange(lo, lo+8)
				ids, err := q.Push(ctx, bodies...)
				retried := err != nil
				for err != nil && ctx.Err() == nil {
					retries.Add(1)
					time.Sleep(20 * time.Millisecond)
					err = q.PushWithIDs(ctx, ids, bodies...)
				}
				mu.Lock()
				for i, id := range ids {
					msgs[uint32(lo+i)] = &pushed{id: id, acked: err == nil, retried: retried}
				}
				mu.Unlock()
			}
		})
	}

	until(t, "pushes and deliveries under way", func() bool { return count() > 2000 })
	for i, f := range failovers {
		start := time.Now()
		f.do(t)
		t.Logf("failover %d (%s) took %v; %d handled so far", i+1, f.name, time.Since(start).Round(time.Millisecond), count())
		n := count()
		until(t, "deliveries after the failover", func() bool { return count() > n+2000 })
	}
	stopPush()
	wg.Wait()
	// Done when nothing is waiting or held: reclaimed messages of
	// consumers that lost their lease included.
	until(t, "queue drained", func() bool {
		st, err := q.Stats(context.Background())
		return err == nil && st.Ready == 0 && st.Processing == 0
	})
	stopConsume()

	mu.Lock()
	defer mu.Unlock()
	var acked, lost, wrongID, pushDups, heldDups int
	for s, m := range msgs {
		if !m.acked {
			continue // cut short by the end of the test
		}
		acked++
		d := deliveries[s]
		if len(d) == 0 {
			lost++
			continue
		}
		for _, id := range d {
			if id != m.id {
				wrongID++
			}
		}
		switch {
		case len(d) == 1:
		case m.retried:
			pushDups += len(d) - 1
		default:
			heldDups += len(d) - 1
		}
	}
	bound := len(failovers) * opts.Concurrency * opts.Prefetch
	t.Logf("%d messages acknowledged (%d Push retries), %d handled; lost %d; duplicates: %d of retried pushes, %d of messages held by consumers (bound %d)",
		acked, retries.Load(), handled, lost, pushDups, heldDups, bound)
	if lost > 0 {
		t.Errorf("%d messages whose Push returned nil were never delivered", lost)
	}
	if wrongID > 0 {
		t.Errorf("%d deliveries under another ID than the message was pushed with", wrongID)
	}
	if heldDups > bound {
		t.Errorf("%d duplicates of messages whose Push was not retried; at most %d (%d failovers × %d consumers × Prefetch %d) can have been in flight",
			heldDups, bound, len(failovers), opts.Concurrency, opts.Prefetch)
	}
	if st := stats(t, q); st.Dead != 0 {
		t.Errorf("%d dead letters; want none", st.Dead)
	}
}
