package queue_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/queue"
)

func TestNewInvalid(t *testing.T) {
	rdb := redistest.Client(t)
	tests := []struct {
		what  string
		name  string
		opts  queue.Options
		field string
	}{
		{"empty name", "", queue.Options{}, "name"},
		{"long name", strings.Repeat("x", queue.MaxNameLen+1), queue.Options{}, "name"},
		{"brace in name", "a{b}", queue.Options{}, "name"},
		{"brace in prefix", "q", queue.Options{Prefix: "p{"}, "Options.Prefix"},
		{"negative size", "q", queue.Options{MaxMessageBytes: -1}, "Options.MaxMessageBytes"},
		{"huge size", "q", queue.Options{MaxMessageBytes: queue.MaxMessageBytesLimit + 1}, "Options.MaxMessageBytes"},
		{"negative batch", "q", queue.Options{PushBatch: -1}, "Options.PushBatch"},
		{"negative prefetch", "q", queue.Options{Prefetch: -1}, "Options.Prefetch"},
		{"negative attempts", "q", queue.Options{MaxAttempts: -1}, "Options.MaxAttempts"},
		{"tiny ttl", "q", queue.Options{LeaseTTL: 1}, "Options.LeaseTTL"},
		{"negative block", "q", queue.Options{BlockTimeout: -1}, "Options.BlockTimeout"},
		{"retire before block", "q", queue.Options{BlockTimeout: 2e9, RetireAfter: 1e9}, "Options.RetireAfter"},
		{"negative replica timeout", "q", queue.Options{ReplicaTimeout: -1}, "Options.ReplicaTimeout"},
		{"replica timeout not below ReadTimeout", "q", queue.Options{ReplicaTimeout: time.Minute}, "Options.ReplicaTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			_, err := queue.New(rdb, tt.name, tt.opts)
			var ie *queue.InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, queue.ErrInvalid) || ie.Field != tt.field {
				t.Fatalf("New(%q, %+v) = %v; want an *InvalidError for %s", tt.name, tt.opts, err, tt.field)
			}
		})
	}
	if _, err := queue.New(nil, "q", queue.Options{}); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("New(nil client) = %v; want ErrInvalid", err)
	}
	// A queue that never waits has no WAIT reply to read.
	if _, err := queue.New(rdb, "q", queue.Options{Replicas: -1, ReplicaTimeout: time.Minute}); err != nil {
		t.Fatalf("New(Replicas -1, ReplicaTimeout 1m) = %v; want nil", err)
	}
}

func TestReplicaTimeoutDefault(t *testing.T) {
	tests := []struct {
		readTimeout time.Duration // of the client; 0: go-redis' default (5s)
		want        time.Duration
	}{
		{0, queue.DefaultReplicaTimeout},
		{-1, queue.DefaultReplicaTimeout}, // no read deadline
		{3 * time.Second, queue.DefaultReplicaTimeout},
		{500 * time.Millisecond, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		rdb := redis.NewClient(&redis.Options{Addr: "localhost:0", ReadTimeout: tt.readTimeout}) // never dialled
		q, err := queue.New(rdb, "q", queue.Options{})
		switch {
		case err != nil:
			t.Errorf("New with ReadTimeout %v = %v; want nil", tt.readTimeout, err)
		case q.Options().ReplicaTimeout != tt.want:
			t.Errorf("New with ReadTimeout %v: ReplicaTimeout %v; want %v", tt.readTimeout, q.Options().ReplicaTimeout, tt.want)
		}
		rdb.Close()
	}
}

func TestDefaults(t *testing.T) {
	q, err := queue.New(redistest.Client(t), "q", queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := q.Options()
	if o.MaxMessageBytes != 512<<10 || o.Prefetch != queue.DefaultPrefetch || o.LeaseTTL != queue.DefaultLeaseTTL ||
		o.ReclaimInterval != queue.DefaultLeaseTTL/2 || o.Concurrency != 1 || o.Prefix != queue.DefaultPrefix ||
		o.Replicas != 0 || o.ReplicaTimeout != queue.DefaultReplicaTimeout {
		t.Fatalf("defaults = %+v", o)
	}
}

func TestPushConsume(t *testing.T) {
	rdb := redistest.Client(t)
	q := newQueue(t, rdb, fast(queue.Options{Concurrency: 4, PushBatch: 7, Prefetch: 5}))
	const n = 1000
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = binary.BigEndian.AppendUint32(nil, uint32(i))
	}
	ids, err := q.Push(context.Background(), bodies...)
	if err != nil || len(ids) != n {
		t.Fatalf("Push = %d IDs, %v; want %d, nil", len(ids), err, n)
	}
	var mu sync.Mutex
	seen := make(map[uint32]queue.ID)
	stop := consume(t, q, func(ctx context.Context, m queue.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[binary.BigEndian.Uint32(m.Body)] = m.ID
		return nil
	})
	until(t, "all messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	stop()
	for i, id := range ids {
		if seen[uint32(i)] != id {
			t.Fatalf("message %d delivered with ID %v; Push returned %v", i, seen[uint32(i)], id)
		}
	}
	if st := stats(t, q); st.Ready != 0 || st.Processing != 0 || st.Dead != 0 {
		t.Fatalf("Stats after consuming all = %+v; want empty lists", st)
	}
}

func TestPushTooLarge(t *testing.T) {
	rdb := redistest.Client(t)
	q := newQueue(t, rdb, queue.Options{MaxMessageBytes: 10})
	tests := []struct {
		sizes []int
		index int // -1: accepted
	}{
		{[]int{10, 0, 3}, -1},
		{[]int{1, 11, 2}, 1},
		{[]int{11}, 0},
	}
	pushed := 0
	for _, tt := range tests {
		msgs := make([][]byte, len(tt.sizes))
		for i, s := range tt.sizes {
			msgs[i] = bytes.Repeat([]byte("x"), s)
		}
		_, err := q.Push(context.Background(), msgs...)
		var se *queue.SizeError
		switch {
		case tt.index < 0 && err != nil:
			t.Fatalf("Push(sizes %v) = %v; want nil", tt.sizes, err)
		case tt.index < 0:
			pushed += len(msgs)
		case !errors.As(err, &se) || !errors.Is(err, queue.ErrTooLarge) || se.Index != tt.index || se.Limit != 10:
			t.Fatalf("Push(sizes %v) = %v; want a *SizeError at index %d", tt.sizes, err, tt.index)
		}
	}
	if st := stats(t, q); st.Ready != int64(pushed) {
		t.Fatalf("Ready = %d; want %d (a rejected call pushes nothing)", st.Ready, pushed)
	}
}

func TestPushWithIDs(t *testing.T) {
	rdb := redistest.Client(t)
	q := newQueue(t, rdb, fast(queue.Options{}))
	ctx := context.Background()
	ids := []queue.ID{{1}, {2}}
	if err := q.PushWithIDs(ctx, ids[:1], []byte("a"), []byte("b")); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("PushWithIDs(1 ID, 2 messages) = %v; want ErrInvalid", err)
	}
	for range 2 { // a retry: the same message twice
		if err := q.PushWithIDs(ctx, ids, []byte("a"), []byte("b")); err != nil {
			t.Fatalf("PushWithIDs = %v; want nil", err)
		}
	}
	got := collect(t, q, 4)
	if fmt.Sprint(got) != fmt.Sprint(map[string][]queue.ID{"a": {ids[0], ids[0]}, "b": {ids[1], ids[1]}}) {
		t.Fatalf("delivered %v; want a and b twice each under their IDs", got)
	}
}

func TestNackRetriesThenDeadLetters(t *testing.T) {
	rdb := redistest.Client(t)
	q := newQueue(t, rdb, fast(queue.Options{MaxAttempts: 3}))
	if _, err := q.Push(context.Background(), []byte("poison"), []byte("ok")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var attempts []int
	okDone := make(chan struct{})
	stop := consume(t, q, func(ctx context.Context, m queue.Message) error {
		if string(m.Body) == "ok" {
			close(okDone)
			return nil
		}
		mu.Lock()
		attempts = append(attempts, m.Attempt)
		mu.Unlock()
		return errors.New("boom")
	})
	<-okDone
	until(t, "poison dead-lettered", func() bool { return stats(t, q).Dead == 1 })
	stop()
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Fatalf("poison delivered with attempts %v; want [1 2 3]", attempts)
	}
	dead, _ := rdb.LRange(context.Background(), q.Keys().Dead, 0, -1).Result()
	if _, body, err := queue.Decode([]byte(dead[0])); err != nil || string(body) != "poison" {
		t.Fatalf("dead letter = %q, %v; want poison", body, err)
	}
	if n, _ := rdb.Exists(context.Background(), q.Keys().Attempts).Result(); n != 0 {
		t.Fatalf("attempts hash still exists after the dead letter")
	}
}

func TestHandlerPanicRecovered(t *testing.T) {
	rdb := redistest.Client(t)
	var reported atomic.Int64
	q := newQueue(t, rdb, fast(queue.Options{OnError: func(err error) {
		if errors.Is(err, queue.ErrPanic) {
			reported.Add(1)
		}
	}}))
	if _, err := q.Push(context.Background(), []byte("a"), []byte("b"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	handled := map[string]int{}
	stop := consume(t, q, func(ctx context.Context, m queue.Message) error {
		if string(m.Body) == "b" && m.Attempt == 1 {
			panic("handler bug")
		}
		mu.Lock()
		handled[string(m.Body)] = m.Attempt
		mu.Unlock()
		return nil
	})
	until(t, "all handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 3
	})
	stop()
	if handled["b"] != 2 || handled["a"] != 1 || handled["c"] != 1 || reported.Load() != 1 {
		t.Fatalf("handled attempts %v, panics reported %d; want b on attempt 2 and one panic", handled, reported.Load())
	}
}

func TestMalformedDeadLettered(t *testing.T) {
	rdb := redistest.Client(t)
	q := newQueue(t, rdb, fast(queue.Options{}))
	if err := rdb.LPush(context.Background(), q.Keys().Ready, "not a message").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Push(context.Background(), []byte("fine")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 2)
	stop := consume(t, q, func(ctx context.Context, m queue.Message) error {
		got <- string(m.Body)
		return nil
	})
	if b := <-got; b != "fine" {
		t.Fatalf("handled %q; want fine", b)
	}
	until(t, "malformed entry dead-lettered", func() bool { return stats(t, q).Dead == 1 })
	stop()
}

func TestConsumeNilHandler(t *testing.T) {
	q := newQueue(t, redistest.Client(t), queue.Options{})
	if err := q.Consume(context.Background(), nil); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("Consume(nil) = %v; want ErrInvalid", err)
	}
	if err := q.Drain(context.Background(), nil); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("Drain(nil) = %v; want ErrInvalid", err)
	}
}

func TestConsumeStopsOnCancel(t *testing.T) {
	q := newQueue(t, redistest.Client(t), fast(queue.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Consume(ctx, func(context.Context, queue.Message) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume(cancelled) = %v; want context.Canceled", err)
	}
}
