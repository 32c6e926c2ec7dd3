package serial_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/abacus-go/abacus/serial"
	"github.com/redis/go-redis/v9"
)

// exampleKey returns a fresh key, so that the examples' output does not
// depend on what a shared REDIS_URL already holds.
func exampleKey(rdb *redis.Client) (string, func()) {
	key := "example:" + rand.Text()
	return key, func() { rdb.Del(context.Background(), key) }
}

func Example() {
	rdb := exampleClient() // e.g. redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	key, cleanup := exampleKey(rdb)
	defer cleanup()

	orders, err := serial.New(rdb, key, serial.Options{})
	if err != nil {
		panic(err)
	}
	defer orders.Close(context.Background())

	ctx := context.Background()
	for i := 0; i < 3; i++ {
		id, err := orders.Next(ctx) // one INCRBY for the first 100 IDs, then local
		if err != nil {
			panic(err)
		}
		fmt.Println(id)
	}
	// Output:
	// 1
	// 2
	// 3
}

func ExampleAllocator_NextN() {
	rdb := exampleClient()
	defer rdb.Close()
	key, cleanup := exampleKey(rdb)
	defer cleanup()

	a, _ := serial.New(rdb, key, serial.Options{MinBlock: 4, MaxBlock: 4})
	defer a.Close(context.Background())
	ids, err := a.NextN(context.Background(), 10) // spans three blocks of 4
	fmt.Println(ids, err)
	// Output:
	// [1 2 3 4 5 6 7 8 9 10] <nil>
}

func ExampleAllocator_Stats() {
	rdb := exampleClient()
	defer rdb.Close()
	key, cleanup := exampleKey(rdb)
	defer cleanup()

	a, _ := serial.New(rdb, key, serial.Options{MinBlock: 1000, MaxBlock: 1000})
	defer a.Close(context.Background())
	for i := 0; i < 2500; i++ {
		a.Next(context.Background())
	}
	st := a.Stats()
	// 2,500 IDs from three blocks, 500 left in the third. A fourth may be
	// held ahead already (Ahead) or still on its way: this loop takes IDs
	// faster than Redis answers, so the allocator requests blocks early
	// (see FetchTime).
	fmt.Printf("issued %d from %d blocks, %d left; one INCRBY per block: %t\n",
		st.Issued, st.Blocks-int64(st.Ahead), st.Remaining, st.RoundTrips == st.Blocks)
	// Output:
	// issued 2500 from 3 blocks, 500 left; one INCRBY per block: true
}

// After Redis lost the counter (here: deleted; in life, a restart without
// persistence), the allocator refuses to issue and says how far it had
// gone; Resume reseeds the key above that and carries on.
func ExampleAllocator_Resume() {
	rdb := exampleClient()
	defer rdb.Close()
	key, cleanup := exampleKey(rdb)
	defer cleanup()
	ctx := context.Background()

	// Blocks of 10, the next one requested only when one is used up.
	a, _ := serial.New(rdb, key, serial.Options{MinBlock: 10, MaxBlock: 10, PrefetchThreshold: 1e-9})
	defer a.Close(context.Background())
	ids, _ := a.NextN(ctx, 3)
	fmt.Println("issued", ids)

	rdb.Del(ctx, key) // Redis forgets

	ids, _ = a.NextN(ctx, 7)
	fmt.Println("issued", ids, "(rest of the block held)")
	_, err := a.Next(ctx)
	var rerr *serial.RegressionError
	if errors.As(err, &rerr) {
		fmt.Printf("refused block (%d, %d]: IDs up to %d were leased\n", rerr.End-rerr.Size, rerr.End, rerr.HighWater)
	}

	// Floor 0: this allocator is the key's only user, its own HighWater is
	// enough. Otherwise pass the highest ID any process issued.
	if err := a.Resume(ctx, 0); err != nil {
		panic(err)
	}
	id, _ := a.Next(ctx)
	fmt.Println("resumed at", id)
	// Output:
	// issued [1 2 3]
	// issued [4 5 6 7 8 9 10] (rest of the block held)
	// refused block (0, 10]: IDs up to 10 were leased
	// resumed at 11
}

func ExampleReseed() {
	rdb := exampleClient()
	defer rdb.Close()
	key, cleanup := exampleKey(rdb)
	defer cleanup()
	ctx := context.Background()

	// Start order numbers above those a legacy system already used.
	v, _ := serial.Reseed(ctx, rdb, key, 500_000)
	fmt.Println(v)
	v, _ = serial.Reseed(ctx, rdb, key, 1_000) // never lowers the key
	fmt.Println(v)

	a, _ := serial.New(rdb, key, serial.Options{})
	defer a.Close(context.Background())
	id, _ := a.Next(ctx)
	fmt.Println(id)
	// Output:
	// 500000
	// 500000
	// 500001
}

func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"}) // New does no I/O
	defer rdb.Close()

	_, err := serial.New(rdb, "orders", serial.Options{MinBlock: 5000, MaxBlock: 1000})
	var ie *serial.InvalidError
	fmt.Println(errors.Is(err, serial.ErrInvalid), errors.As(err, &ie) && ie.Field == "Options.MinBlock")
	fmt.Println(err)

	_, err = serial.New(rdb, "", serial.Options{})
	fmt.Println(err)
	// Output:
	// true true
	// serial: invalid Options.MinBlock 5000: must not exceed MaxBlock 1000
	// serial: invalid key "": must not be empty
}
