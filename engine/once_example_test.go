package engine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/abacus-go/abacus/engine"
)

// Billed API calls: a call whose response was lost is retried by the load
// balancer on another process, with the same idempotency key; it is
// billed once.
func ExampleEngine_AddOnce() {
	ctx := context.Background()
	rdb := exampleClient()
	defer rdb.Close()
	rdb.Del(ctx, "example:calls:acme")
	requestID := fmt.Sprint("req-", time.Now().UnixNano()) // the client's idempotency key

	var processes []*engine.Engine
	for range 2 {
		e, err := engine.New(rdb, engine.Options{Namespace: "example:"})
		if err != nil {
			panic(err)
		}
		processes = append(processes, e)
	}
	for _, e := range processes { // the first try, then the retry
		if err := e.AddOnce("calls:acme", 1, requestID); err != nil { // in memory: no I/O
			panic(err)
		}
		if err := e.Close(ctx); err != nil { // the final flush
			panic(err)
		}
	}
	fmt.Println("billed calls:", rdb.Get(ctx, "example:calls:acme").Val())
	fmt.Println("retries Redis refused:", processes[1].Stats().Once.Seen)
	// Output:
	// billed calls: 1
	// retries Redis refused: 1
}
