package queue

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// TestWirePerMessage measures what Push + Consume + ack (and Push +
// Drain) send to Redis per message, for 1 KiB and 16 KiB bodies, and checks
// that the ack does not carry the body. Run:
//
//	go test -run TestWirePerMessage -v ./queue
//
// "sent" is every byte written on the client's connections (leases and
// the reclaimer included); "ack" is the RESP size of the settle scripts.
func TestWirePerMessage(t *testing.T) {
	rdb := redistest.Client(t)
	for _, drain := range []bool{false, true} {
		mode, settle := "Consume", "settle"
		if drain {
			mode, settle = "Drain", "drain-settle"
		}
		ack := map[int]float64{}
		for _, size := range []int{1 << 10, 16 << 10} {
			w := measure(t, rdb, size, drain)
			perMsg := func(n int64) float64 { return float64(n) / float64(w.msgs) }
			t.Logf("%-7s body %5d B: %.3f cmds/msg, %.0f B sent/msg (%.0f over the body), ack %.1f B/msg; by kind:%s",
				mode, size, perMsg(w.cmds()), perMsg(w.sent.Load()), perMsg(w.sent.Load())-float64(size), perMsg(w.bytes[settle]), w)
			ack[size] = perMsg(w.bytes[settle])
		}
		small, large := ack[1<<10], ack[16<<10]
		// The same for both sizes, and less than the smaller body: keys,
		// token and refs, no body.
		if large > small+1 || large >= 1<<10 {
			t.Errorf("%s: ack bytes per message = %.1f for 1 KiB bodies, %.1f for 16 KiB; want the same, under 1 KiB (no body)", mode, small, large)
		}
	}
}

// wire counts what one client sends: commands and their RESP bytes by
// kind (the queue's scripts by name), and the bytes written on its
// connections.
type wire struct {
	msgs   int
	sent   atomic.Int64
	trips  atomic.Int64 // round trips: commands sent alone, and pipelines
	mu     sync.Mutex
	count  map[string]int64 // guarded by mu
	bytes  map[string]int64 // guarded by mu
	script map[string]string
}

func newWire() *wire {
	w := &wire{count: map[string]int64{}, bytes: map[string]int64{}, script: map[string]string{}}
	for name, s := range map[string]*redis.Script{
		"take": takeScript, "settle": settleScript, "reclaim": reclaimScript,
		"drain-take": drainTakeScript, "drain-settle": drainSettleScript,
	} {
		w.script[s.Hash()] = name
	}
	return w
}

func (w *wire) cmds() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var n int64
	for _, c := range w.count {
		n += c
	}
	return n
}

func (w *wire) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, k := range []string{"lpush", "take", "blmove", "hget", "settle", "drain-take", "drain-settle", "other"} {
		if w.count[k] > 0 {
			fmt.Fprintf(&b, " %s %d× %.0f B/msg", k, w.count[k], float64(w.bytes[k])/float64(w.msgs))
		}
	}
	return b.String()
}

func (w *wire) add(cmd redis.Cmder) {
	args := cmd.Args()
	kind := cmd.Name()
	if kind == "evalsha" || kind == "eval" {
		kind = "other"
		if s, ok := args[1].(string); ok && w.script[s] != "" {
			kind = w.script[s]
		}
	} else if kind != "lpush" && kind != "blmove" && kind != "hget" {
		kind = "other"
	}
	n := len("*\r\n") + len(strconv.Itoa(len(args)))
	for _, a := range args {
		var l int
		switch v := a.(type) {
		case string:
			l = len(v)
		case []byte:
			l = len(v)
		default:
			l = len(fmt.Sprint(v))
		}
		n += len("$\r\n\r\n") + len(strconv.Itoa(l)) + l
	}
	w.mu.Lock()
	w.count[kind]++
	w.bytes[kind] += int64(n)
	w.mu.Unlock()
}

func (w *wire) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countConn{Conn: c, n: &w.sent}, nil
	}
}

func (w *wire) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		w.trips.Add(1)
		w.add(cmd)
		return next(ctx, cmd)
	}
}

func (w *wire) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		w.trips.Add(1)
		for _, c := range cmds {
			w.add(c)
		}
		return next(ctx, cmds)
	}
}

type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// measure pushes 320 messages of size bytes in one call, then consumes
// them with one consumer taking 32 at a time (or drains them), all
// through a counting client, and returns the counts from Push to the
// return of Consume or Drain.
func measure(t *testing.T, rdb *redis.Client, size int, drain bool) *wire {
	t.Helper()
	const n, prefetch = 320, 32
	ctx := context.Background()
	for _, s := range []*redis.Script{takeScript, settleScript, reclaimScript, drainTakeScript, drainSettleScript} {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			t.Fatal(err)
		}
	}
	w := newWire()
	w.msgs = n
	o := *rdb.Options()
	counted := redis.NewClient(&o)
	defer counted.Close()
	counted.AddHook(w)
	opts := Options{Prefix: redistest.Prefix(t), Prefetch: prefetch, BlockTimeout: 100 * time.Millisecond}
	q, err := New(counted, "jobs", opts)
	if err != nil {
		t.Fatal(err)
	}
	observer, _ := New(rdb, "jobs", opts)
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = make([]byte, size)
	}
	if _, err := q.Push(ctx, bodies...); err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	h := func(ctx context.Context, m Message) error {
		if len(m.Body) != size {
			t.Errorf("body of %d bytes; want %d", len(m.Body), size)
		}
		handled.Add(1)
		return nil
	}
	if drain {
		if err := q.Drain(ctx, h); err != nil {
			t.Fatalf("Drain = %v", err)
		}
		if got := handled.Load(); got != n {
			t.Fatalf("drained %d messages; want %d", got, n)
		}
		return w
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- q.Consume(cctx, h) }()
	redistest.WaitFor(t, "every message handled and acked", func() bool {
		st, err := observer.Stats(ctx)
		return err == nil && handled.Load() >= n && st.Ready == 0 && st.Processing == 0
	})
	cancel()
	<-done
	if got := handled.Load(); got != n {
		t.Fatalf("handled %d messages; want %d", got, n)
	}
	return w
}
