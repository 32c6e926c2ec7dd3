package queue

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/lease"
)

// scriptQueue returns a queue on a fresh prefix with MaxAttempts 3, and
// pushes bodies onto its ready list (the first one oldest).
func scriptQueue(t *testing.T, bodies ...string) *Queue {
	t.Helper()
	q, err := New(redistest.Client(t), "jobs", Options{Prefix: redistest.Prefix(t), MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		if _, err := q.Push(context.Background(), []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	return q
}

// testConsumer returns a consumer of q holding its lease (not renewed) for
// the rest of the test.
func testConsumer(t *testing.T, q *Queue) *consumer {
	t.Helper()
	l, err := lease.TryAcquire(context.Background(), q.rdb, consumerLease("c"), time.Minute, lease.Options{KeyPrefix: q.keys.LeasePrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return q.newConsumer("c", l)
}

// list returns the bodies in key, left to right ("?" for a malformed entry).
func list(t *testing.T, q *Queue, key string) string {
	t.Helper()
	raw, err := q.rdb.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i] = "?"
		if _, b, err := Decode([]byte(r)); err == nil {
			out[i] = string(b)
		}
	}
	return fmt.Sprint(out)
}

func failures(t *testing.T, q *Queue, raw []byte) string {
	t.Helper()
	id, _, _ := Decode(raw)
	return q.rdb.HGet(context.Background(), q.keys.Attempts, string(id[:])).Val()
}

// A take whose reply was lost, and which go-redis or the consumer then
// sends again, strands nothing: the second take returns what the first
// moved, and moves no more than Prefetch in all.
func TestTakeRepeated(t *testing.T) {
	q := scriptQueue(t, "a", "b", "c", "d", "e")
	q.opts.Prefetch = 3
	c := testConsumer(t, q)
	ctx := context.Background()
	if err := c.take(ctx); err != nil {
		t.Fatal(err)
	}
	first := fmt.Sprintf("%q", c.raw)
	// The reply is lost: the consumer takes again.
	if err := c.take(ctx); err != nil {
		t.Fatal(err)
	}
	if again := fmt.Sprintf("%q", c.raw); again != first {
		t.Fatalf("repeated take = %s; want the first take's %s", again, first)
	}
	if got := list(t, q, c.proc); got != "[c b a]" {
		t.Fatalf("processing list = %s; want [c b a] (Prefetch 3 in all)", got)
	}
	// One left over (a settle that failed) comes first, then new ones.
	q.rdb.LTrim(ctx, c.proc, -1, -1)
	if err := c.take(ctx); err != nil {
		t.Fatal(err)
	}
	if got := list(t, q, c.proc); got != "[e d a]" {
		t.Fatalf("processing list after a take with [a] left over = %s; want [e d a]", got)
	}
}

// A consumer's settle run twice with the same arguments (its first reply
// was lost) settles each message once.
func TestSettleRepeated(t *testing.T) {
	q := scriptQueue(t, "ack", "nack", "return")
	ctx := context.Background()
	if err := q.rdb.LPush(ctx, q.keys.Ready, "junk").Err(); err != nil {
		t.Fatal(err)
	}
	c := testConsumer(t, q)
	if err := c.take(ctx); err != nil || len(c.raw) != 4 {
		t.Fatalf("take = %d messages, %v; want 4", len(c.raw), err)
	}
	args := c.settleArgs([]string{"a", "n", "r", "d"})
	for try := 1; try <= 2; try++ {
		found, err := run(ctx, q.rdb, settleScript, c.settleKeys, args...).Int()
		if want := []int{4, 0}[try-1]; err != nil || found != want {
			t.Fatalf("settle #%d = %d, %v; want %d found", try, found, err, want)
		}
		if got := list(t, q, q.keys.Ready) + list(t, q, c.proc) + list(t, q, q.keys.Dead); got != "[nack return][][?]" {
			t.Fatalf("after settle #%d: ready, processing, dead = %s; want [nack return][][?]", try, got)
		}
		if n := failures(t, q, c.raw[1]); n != "1" {
			t.Fatalf("after settle #%d: nacked message has %q failures; want 1", try, n)
		}
	}
}

// A settle takes its batch from the right end of the processing list and
// leaves alone what is not in it: a message that a late BLMOVE put at the
// left end, also when it is popped in the place of a batch message that
// is gone.
func TestSettleLeavesOthersAlone(t *testing.T) {
	tests := []struct {
		what string
		gone bool // the oldest message of the batch is no longer there
		want int  // messages found
	}{
		{"whole batch there", false, 2},
		{"a batch message gone", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			q := scriptQueue(t, "a", "b")
			ctx := context.Background()
			c := testConsumer(t, q)
			if err := c.take(ctx); err != nil || len(c.raw) != 2 {
				t.Fatalf("take = %d messages, %v; want 2", len(c.raw), err)
			}
			if tt.gone {
				q.rdb.RPop(ctx, c.proc)
			}
			q.rdb.LPush(ctx, c.proc, Encode(NewID(), []byte("late")))
			found, err := run(ctx, q.rdb, settleScript, c.settleKeys, c.settleArgs([]string{"a", "a"})...).Int()
			if err != nil || found != tt.want {
				t.Fatalf("settle = %d, %v; want %d found", found, err, tt.want)
			}
			if got := list(t, q, c.proc) + list(t, q, q.keys.Ready); got != "[late][]" {
				t.Fatalf("processing list, ready list = %s; want [late][]", got)
			}
		})
	}
}

// Batches larger than a Lua script can unpack into one command (8,000
// values) are taken and settled whole, in order, their failures counted
// and then forgotten.
func TestBatchesBeyondLuaStack(t *testing.T) {
	const n = 10_000
	q := scriptQueue(t)
	q.opts.Prefetch = n
	ctx := context.Background()
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = []byte(strconv.Itoa(i))
	}
	if _, err := q.Push(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	c := testConsumer(t, q)
	ops := func(op string) []string { return slices.Repeat([]string{op}, n) }
	for _, step := range []struct {
		op       string
		failures int    // each message's failures as taken
		next     string // the next message to take after the settle
	}{
		{"r", 0, "0"},    // returned: the oldest is next again
		{"n", 0, "9999"}, // nacked: pushed back newest first
		{"a", 1, ""},
	} {
		if err := c.take(ctx); err != nil || len(c.raw) != n {
			t.Fatalf("take = %d messages, %v; want %d", len(c.raw), err, n)
		}
		for i, m := range c.taken {
			if m.Attempt != step.failures+1 {
				t.Fatalf("before %s: message %d has attempt %d; want %d", step.op, i, m.Attempt, step.failures+1)
			}
		}
		found, err := run(ctx, q.rdb, settleScript, c.settleKeys, c.settleArgs(ops(step.op))...).Int()
		if err != nil || found != n {
			t.Fatalf("settle %s = %d, %v; want %d found", step.op, found, err, n)
		}
		next, err := q.rdb.LIndex(ctx, q.keys.Ready, -1).Result()
		if err == redis.Nil {
			next, err = "", nil
		}
		if _, b, _ := Decode([]byte(next)); err != nil || string(b) != step.next {
			t.Fatalf("after settle %s: next ready message %q, %v; want %q", step.op, b, err, step.next)
		}
	}
	if n, err := q.rdb.Exists(ctx, q.keys.Attempts, c.proc, q.keys.Ready).Result(); err != nil || n != 0 {
		t.Fatalf("after acking everything: %d of attempts, processing and ready lists exist, %v; want none", n, err)
	}
}

// A Drain settle run twice with the same arguments (its first reply was
// lost) counts a nack's failure once, and acks or dead-letters once.
func TestDrainSettleRepeated(t *testing.T) {
	tests := []struct {
		op       string
		failures int    // the message's failures before the settle
		attempts string // the attempts hash entry after it
		drain    string // the drain list after it
		dead     string
	}{
		{"a", 0, "", "[]", "[]"},
		{"n", 0, "1", "[m]", "[]"},
		{"n", 1, "2", "[m]", "[]"},
		{"n", 2, "", "[]", "[m]"}, // MaxAttempts 3
		{"d", 1, "", "[]", "[m]"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s after %d failures", tt.op, tt.failures), func(t *testing.T) {
			q := scriptQueue(t, "m", "next")
			ctx := context.Background()
			l, err := lease.TryAcquire(ctx, q.rdb, drainLease, time.Minute, lease.Options{KeyPrefix: q.keys.LeasePrefix})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release(ctx)
			d := q.newDrainer(l)
			raw, _, err := d.take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tt.failures > 0 {
				id, _, _ := Decode(raw)
				q.rdb.HSet(ctx, q.keys.Attempts, string(id[:]), tt.failures)
			}
			for try := 1; try <= 2; try++ {
				if err := d.settle(ctx, tt.op, raw, tt.failures); err != nil {
					t.Fatal(err)
				}
				got := failures(t, q, raw) + list(t, q, q.keys.Drain) + list(t, q, q.keys.Dead)
				if want := tt.attempts + tt.drain + tt.dead; got != want {
					t.Fatalf("after settle #%d: failures, drain list, dead = %s; want %s", try, got, want)
				}
			}
		})
	}
}

// A take followed by a WAIT writes whenever it returns something: the
// LPUSH of what it moved, or, when it returns only messages an earlier call
// moved, an LMOVE of the list onto itself that changes nothing, so that the
// WAIT counts replicas that have those moves, whichever connection made
// them. A take that returns nothing writes nothing, and neither does one of
// held messages that no WAIT follows.
func TestTakesWriteWhatTheyReturn(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{}) // its own: commandstats are per server
	rdb := srv.Client(t)
	ctx := context.Background()
	q, err := New(rdb, "jobs", Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	writes := func() int64 {
		t.Helper()
		c := commandStats(t, rdb)
		return c["lpush"] + c["lmove"]
	}
	c := testConsumer(t, q)
	take := func(wait bool) func() error {
		return func() error { return run(ctx, rdb, takeScript, c.takeKeys, c.takeArgs(wait)...).Err() }
	}
	l, err := lease.TryAcquire(ctx, rdb, drainLease, time.Minute, lease.Options{KeyPrefix: q.keys.LeasePrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	d := q.newDrainer(l)
	drainTake := func() error { _, _, err := d.take(ctx); return err }
	tests := []struct {
		what   string
		push   int
		take   func() error
		writes int64 // LPUSH and LMOVE calls the take makes
	}{
		{"take of nothing", 0, take(true), 0},
		{"take moving one", 1, take(true), 1},
		{"take of the held one", 0, take(true), 1},
		{"take of the held one, no WAIT", 0, take(false), 0},
		{"drain take moving one", 1, drainTake, 1},
		{"drain take of the held one", 0, drainTake, 1},
	}
	for _, tt := range tests {
		for range tt.push {
			if _, err := q.Push(ctx, []byte("m")); err != nil {
				t.Fatal(err)
			}
		}
		before := writes()
		if err := tt.take(); err != nil {
			t.Fatalf("%s: %v", tt.what, err)
		}
		if got := writes() - before; got != tt.writes {
			t.Errorf("%s: %d LPUSH and LMOVE calls; want %d", tt.what, got, tt.writes)
		}
	}
	if got := list(t, q, c.proc) + list(t, q, q.keys.Drain); got != "[m][m]" {
		t.Errorf("processing and drain lists = %s; want [m][m]", got)
	}
}
