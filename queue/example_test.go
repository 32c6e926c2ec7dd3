package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/queue"
)

// A producer and a consumer. (Not run: it needs a Redis.)
func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"}) // or a ClusterClient
	q, err := queue.New(rdb, "emails", queue.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := q.Push(ctx, []byte("to:ann"), []byte("to:bob")); err != nil {
		log.Fatal(err)
	}
	// At least once: a message may come twice (same ID) after a crash.
	seen := map[queue.ID]bool{}
	ctx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	err = q.Consume(ctx, func(ctx context.Context, m queue.Message) error {
		if seen[m.ID] {
			return nil
		}
		seen[m.ID] = true
		fmt.Printf("send %s (attempt %d)\n", m.Body, m.Attempt)
		return nil // an error would retry it, up to MaxAttempts
	})
	fmt.Println(err)
}

// Drain gives one process at a time the whole queue, in order, with a
// fencing number for downstream writes. (Not run: it needs a Redis.)
func ExampleQueue_Drain() {
	ctx := context.Background()
	q, _ := queue.New(redis.NewClient(&redis.Options{Addr: "localhost:6379"}), "ledger", queue.Options{})
	err := q.Drain(ctx, func(ctx context.Context, m queue.Message) error {
		fmt.Printf("apply %s with fence %d\n", m.Body, m.Fence)
		return nil
	})
	if errors.Is(err, queue.ErrFenced) {
		fmt.Println("a newer owner took over; stop")
	}
}

// A Push that returned an error may or may not have reached the queue,
// and with replicas (Options.Replicas) may not survive a failover: push
// again under the same IDs, so that consumers recognise a second copy.
// (Not run: it needs a Redis.)
func ExampleQueue_PushWithIDs() {
	ctx := context.Background()
	q, _ := queue.New(redis.NewClient(&redis.Options{Addr: "localhost:6379"}), "emails", queue.Options{})
	bodies := [][]byte{[]byte("to:ann"), []byte("to:bob")}
	ids, err := q.Push(ctx, bodies...)
	for try := 1; err != nil && ids != nil && try < 10; try++ {
		var re *queue.ReplicationError
		if errors.As(err, &re) {
			fmt.Printf("%d of %d replicas acknowledged; pushing again\n", re.Acked, re.Want)
		}
		time.Sleep(time.Duration(try) * 100 * time.Millisecond)
		err = q.PushWithIDs(ctx, ids, bodies...)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// All keys of a queue carry its name as a Redis Cluster hash tag.
func ExampleKeysFor() {
	k := queue.KeysFor("", "emails")
	fmt.Println(k.Ready)
	fmt.Println(k.Dead)
	fmt.Println(k.Processing("c1"))
	// Output:
	// abacus:queue:{emails}:ready
	// abacus:queue:{emails}:dead
	// abacus:queue:{emails}:proc:c1
}

// An oversized body is refused before any I/O, and nothing of the call is
// pushed.
func ExampleSizeError() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:0"}) // never dialled
	q, _ := queue.New(rdb, "small", queue.Options{MaxMessageBytes: 4})
	_, err := q.Push(context.Background(), []byte("ok"), []byte("too long"))
	var se *queue.SizeError
	fmt.Println(errors.Is(err, queue.ErrTooLarge), errors.As(err, &se), se.Index)
	fmt.Println(err)
	// Output:
	// true true 1
	// queue: message 1 is 8 bytes, over the limit of 4; nothing was pushed
}

// Bad names are refused with an *InvalidError.
func ExampleInvalidError() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:0"})
	_, err := queue.New(rdb, "", queue.Options{})
	fmt.Println(errors.Is(err, queue.ErrInvalid), err)
	// Output:
	// true queue: invalid name "": must not be empty
}

func ExampleEncode() {
	id := queue.ID{0xab}
	b := queue.Encode(id, []byte("hi"))
	got, body, _ := queue.Decode(b)
	fmt.Println(len(b), got, string(body))
	// Output:
	// 19 ab000000000000000000000000000000 hi
}
