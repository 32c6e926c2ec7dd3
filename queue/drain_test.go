package queue_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/queue"
)

func seqs(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = binary.BigEndian.AppendUint32(nil, uint32(i))
	}
	return out
}

func TestDrainInOrder(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	q := newQueue(t, rdb, fast(queue.Options{}))
	if _, err := q.Push(ctx, seqs(50)...); err != nil {
		t.Fatal(err)
	}
	var got []string
	failed := false
	err := q.Drain(ctx, func(ctx context.Context, m queue.Message) error {
		if m.Fence <= 0 {
			t.Errorf("Message.Fence = %d; want the lease's fence", m.Fence)
		}
		n := binary.BigEndian.Uint32(m.Body)
		got = append(got, fmt.Sprintf("%d/%d", n, m.Attempt))
		if n == 3 && !failed {
			failed = true
			return errors.New("retry me")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Drain = %v; want nil once empty", err)
	}
	want := []string{"0/1", "1/1", "2/1", "3/1", "3/2", "4/1"}
	if len(got) != 51 || fmt.Sprint(got[:6]) != fmt.Sprint(want) || got[50] != "49/1" {
		t.Fatalf("Drain order = %v…; want %v… (a failed message is retried in place)", got[:min(len(got), 6)], want)
	}
	if st := stats(t, q); st.Ready != 0 || st.Processing != 0 {
		t.Fatalf("Stats after Drain = %+v; want empty", st)
	}
}

// Several Drain callers on separate clients, looping while a producer
// pushes: handlers never overlap, and the fence of each handled message is
// never below that of an earlier one.
func TestDrainExclusive(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := redistest.Prefix(t)
	const total, callers = 600, 3
	producer := newQueue(t, srv.Client(t), fast(queue.Options{Prefix: prefix}))
	var (
		mu      sync.Mutex
		fences  []int64
		handled = map[uint32]bool{}
		active  atomic.Int32
	)
	h := func(ctx context.Context, m queue.Message) error {
		if n := active.Add(1); n != 1 {
			t.Errorf("%d Drain handlers running at once", n)
		}
		defer active.Add(-1)
		mu.Lock()
		fences = append(fences, m.Fence)
		handled[binary.BigEndian.Uint32(m.Body)] = true
		mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range callers {
		q := newQueue(t, srv.Client(t), fast(queue.Options{Prefix: prefix}))
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := q.Drain(ctx, h); err != nil && ctx.Err() == nil {
					t.Errorf("Drain: %v", err)
				}
			}
		})
	}
	for _, chunk := range [][2]int{{0, 200}, {200, 400}, {400, total}} {
		if _, err := producer.Push(ctx, seqs(total)[chunk[0]:chunk[1]]...); err != nil {
			t.Fatal(err)
		}
	}
	until(t, "all drained", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == total
	})
	cancel()
	wg.Wait()
	distinct := map[int64]bool{}
	for i, f := range fences {
		distinct[f] = true
		if i > 0 && f < fences[i-1] {
			t.Fatalf("message %d handled under fence %d after fence %d", i, f, fences[i-1])
		}
	}
	t.Logf("%d messages, %d handled, %d Drain ownerships", total, len(fences), len(distinct))
}

// A Drain settle whose reply is lost (the request reached Redis) is sent
// again, by go-redis or by Drain's retry: the retry must change nothing. A
// lost nack reply counts one failure, not two; a lost ack or dead-letter
// reply neither redelivers nor dead-letters twice.
func TestDrainLostSettleReply(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	direct := srv.Client(t)
	proxy := faultproxy.New(t, srv.Addr)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	t.Cleanup(func() { viaProxy.Close() })
	ctx := context.Background()
	tests := []struct {
		what  string
		fails int    // deliveries that return an error, all with their reply lost
		want  string // attempts of the deliveries
		dead  int64
	}{
		{"ack", 0, "[1]", 0},
		{"nack", 1, "[1 2]", 0},
		{"nack to dead letter", 3, "[1 2 3]", 1},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			// The lease is renewed every 10s: within the test, Drain's own
			// settle is the next request after DropNextReply.
			q := newQueue(t, viaProxy, queue.Options{Prefix: redistest.Prefix(t), MaxAttempts: 3, LeaseTTL: 30 * time.Second})
			if _, err := q.Push(ctx, []byte("m")); err != nil {
				t.Fatal(err)
			}
			before := proxy.Stats().DroppedReplies
			var attempts []int
			err := q.Drain(ctx, func(ctx context.Context, m queue.Message) error {
				attempts = append(attempts, m.Attempt)
				proxy.DropNextReply()
				if len(attempts) <= tt.fails {
					return errors.New("fail")
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Drain = %v", err)
			}
			if got := fmt.Sprint(attempts); got != tt.want {
				t.Errorf("delivered with attempts %s; want %s (a lost nack reply counts once)", got, tt.want)
			}
			if n := proxy.Stats().DroppedReplies - before; n != len(attempts) {
				t.Errorf("%d replies dropped; want %d, one per settle", n, len(attempts))
			}
			if n, _ := direct.LLen(ctx, q.Keys().Dead).Result(); n != tt.dead {
				t.Errorf("dead letters = %d; want %d", n, tt.dead)
			}
			if n, _ := direct.Exists(ctx, q.Keys().Attempts, q.Keys().Drain).Result(); n != 0 {
				t.Errorf("attempts hash or drain list left behind after Drain")
			}
		})
	}
}
