package queue

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redisinfo"
	"github.com/abacus-go/abacus/internal/redistest"
)

// maxCommandsPerMessage is the most server commands one message may cost
// end to end (Push, take, acknowledgement) on a queue kept busy.
const maxCommandsPerMessage = 3.5

// TestCommandsPerMessage measures what the server executes per message end
// to end: Push, the consumer's take and its acknowledgement, with the
// consumer's lease, registration, retirement and the reclaimer included.
// Run:
//
//	go test -run TestCommandsPerMessage -v ./queue
//
// Commands are the server's own count: the difference of INFO
// commandstats, on a server of the test's own, before and after. Redis
// counts the commands a Lua script calls under their own names, besides
// the EVALSHA that ran the script, so both count here. Round trips are
// counted on the client: one per command or pipeline it sends.
//
// The scenarios push one message per Push call (a producer that has one
// message at a time, as with rmq's Publish) or 32 per call, before or
// while Consume runs. Only the first is held to a bound: with every
// message in the queue first, a consumer's takes are full batches of
// Prefetch, which is the busy queue the bound is about; the concurrent one
// is reported, its batches being as large as the timing makes them.
func TestCommandsPerMessage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{}) // its own: commandstats are per server
	tests := []struct {
		what      string
		perPush   int
		producers int // 0: push everything before Consume starts
		consumers int
		// Bounds on server commands and round trips per message; 0:
		// reported only.
		maxPerMsg, maxTrips float64
	}{
		{"one per Push, then Consume", 1, 0, 1, maxCommandsPerMessage, 1.1},
		{"32 per Push, then Consume", 32, 0, 1, 0, 0},
		{"one per Push, 4 producers beside Consume with 4 consumers", 1, 4, 4, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			const n = 3200
			m := measureCommands(t, srv, n, tt.perPush, tt.producers, tt.consumers)
			t.Logf("%.3f server commands/msg (push %.3f, consume %.3f), %.3f round trips/msg; consume phase by command: %s",
				m.perMsg(m.total()), m.perMsg(m.push.total()), m.perMsg(m.consume.total()), m.perMsg(m.trips), m.consume)
			if tt.maxPerMsg > 0 && m.perMsg(m.total()) > tt.maxPerMsg {
				t.Errorf("%.3f server commands per message; want at most %.1f", m.perMsg(m.total()), tt.maxPerMsg)
			}
			if tt.maxTrips > 0 && m.perMsg(m.trips) > tt.maxTrips {
				t.Errorf("%.3f round trips per message; want at most %.1f", m.perMsg(m.trips), tt.maxTrips)
			}
		})
	}
}

// calls are server commands by name, as INFO commandstats names them.
type calls map[string]int64

func (c calls) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// String lists the commands, most called first.
func (c calls) String() string {
	names := slices.SortedFunc(maps.Keys(c), func(a, b string) int {
		if c[a] != c[b] {
			return int(c[b] - c[a])
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", name, c[name])
	}
	return b.String()
}

// commandStats returns the commands the server behind rdb has run so far,
// without INFO itself (the measurement's own).
func commandStats(t testing.TB, rdb *redis.Client) calls {
	t.Helper()
	s, err := redisinfo.Read(context.Background(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	delete(s.Calls, "info")
	return s.Calls
}

// since returns the calls made after prev.
func (c calls) since(prev calls) calls {
	out := calls{}
	for name, n := range c {
		if d := n - prev[name]; d != 0 {
			out[name] = d
		}
	}
	return out
}

// commandCount is what measureCommands found.
type commandCount struct {
	msgs          int
	push, consume calls // server commands; consume is everything when producers run beside it
	trips         int64 // client round trips
}

func (m commandCount) total() int64           { return m.push.total() + m.consume.total() }
func (m commandCount) perMsg(n int64) float64 { return float64(n) / float64(m.msgs) }

// measureCommands pushes n 64-byte messages, perPush per call, and consumes
// them with Consume, through a client that counts its round trips. With
// producers > 0 they push while Consume runs; else every message is pushed
// first.
func measureCommands(t *testing.T, srv *redistest.Server, n, perPush, producers, consumers int) commandCount {
	t.Helper()
	ctx := context.Background()
	rdb := srv.Client(t)
	for _, s := range []*redis.Script{takeScript, settleScript, reclaimScript} {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			t.Fatal(err)
		}
	}
	w := newWire()
	counted := srv.Client(t)
	counted.AddHook(w)
	q, err := New(counted, "jobs", Options{Prefix: redistest.Prefix(t), Concurrency: consumers, BlockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 64)
	push := func(msgs int) {
		batch := make([][]byte, perPush)
		for i := range batch {
			batch[i] = body
		}
		for i := 0; i < msgs; i += perPush {
			if _, err := q.Push(ctx, batch[:min(perPush, msgs-i)]...); err != nil {
				t.Error(err)
				return
			}
		}
	}
	m := commandCount{msgs: n}
	before := commandStats(t, rdb)
	if producers == 0 {
		push(n)
		m.push = commandStats(t, rdb).since(before)
		before = commandStats(t, rdb)
	}
	var handled atomic.Int64
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(cctx, func(context.Context, Message) error { handled.Add(1); return nil })
	}()
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() { push(n / producers) })
	}
	wg.Wait()
	redistest.WaitFor(t, "every message handled", func() bool { return handled.Load() >= int64(n) })
	// Consume acknowledges what it handled before it returns.
	cancel()
	<-done
	m.consume = commandStats(t, rdb).since(before)
	m.trips = w.trips.Load()
	if st, err := q.Stats(ctx); err != nil || st != (Stats{Consumers: st.Consumers}) || handled.Load() != int64(n) {
		t.Fatalf("after Consume: handled %d of %d, Stats = %+v, %v; want every message handled once, nothing left", handled.Load(), n, st, err)
	}
	return m
}
