package engine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/abacus-go/abacus/engine"
)

// Unique visitors of a page: 10,000 views by 2,500 visitors reach Redis
// as one command at Close, and the count is the one PFADD of the same
// visitors would give.
func ExampleUnique() {
	ctx := context.Background()
	rdb := exampleClient()
	defer rdb.Close()
	rdb.Del(ctx, "example:uv:/home")

	e, err := engine.New(rdb, engine.Options{Namespace: "example:", FlushInterval: time.Minute})
	if err != nil {
		panic(err)
	}
	visitors, err := e.Unique("uv:/home")
	if err != nil {
		panic(err)
	}
	for view := range 10_000 {
		visitors.Add(fmt.Sprint("user-", view%2500)) // in memory: no I/O
	}
	n, _ := visitors.Count(ctx) // Redis' HyperLogLog merged with this process's
	fmt.Println("unique visitors:", n)

	if err := e.Close(ctx); err != nil { // the final flush
		panic(err)
	}
	fmt.Println("PFCOUNT:", rdb.PFCount(ctx, "example:uv:/home").Val())
	fmt.Println("commands sent:", e.Stats().Uniques.Commands)
	// Output:
	// unique visitors: 2504
	// PFCOUNT: 2504
	// commands sent: 1
}
