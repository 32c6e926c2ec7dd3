package engine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
)

// exampleURL is the Redis the examples use; TestMain sets it.
var exampleURL string

func exampleClient() *redis.Client {
	opt, err := redis.ParseURL(exampleURL)
	if err != nil {
		panic(err)
	}
	return redis.NewClient(opt)
}

func Example() {
	ctx := context.Background()
	rdb := exampleClient()
	defer rdb.Close()
	rdb.Del(ctx, "example:pv:/home")

	e, err := engine.New(rdb, engine.Options{Namespace: "example:"})
	if err != nil {
		panic(err)
	}
	views, err := e.Counter("pv:/home")
	if err != nil {
		panic(err)
	}
	for range 1000 {
		views.Inc() // in memory: no I/O, no allocation
	}
	n, _ := views.Value(ctx) // Redis + this process's unflushed delta
	fmt.Println("views:", n)

	if err := e.Close(ctx); err != nil { // the final flush
		panic(err)
	}
	fmt.Println("in Redis:", rdb.Get(ctx, "example:pv:/home").Val())
	fmt.Println("commands sent:", e.Stats().Commands)
	// Output:
	// views: 1000
	// in Redis: 1000
	// commands sent: 1
}

func ExampleEngine_Flush() {
	ctx := context.Background()
	rdb := exampleClient()
	defer rdb.Close()
	rdb.Del(ctx, "example:signups")

	e, _ := engine.New(rdb, engine.Options{Namespace: "example:", FlushInterval: time.Minute})
	defer e.Close(ctx)
	e.Add("signups", 3)
	e.Add("signups", 4)
	if err := e.Flush(ctx); err != nil { // don't wait for the interval
		panic(err)
	}
	fmt.Println(rdb.Get(ctx, "example:signups").Val())
	// Output: 7
}
