package lease_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/abacus-go/abacus/lease"
	"github.com/redis/go-redis/v9"
)

// A typical owner: acquire with auto-renewal, do the work under the lease's
// context, pass the fence downstream, release. (Not run: it needs a Redis.)
func Example_owner() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	l, err := lease.Acquire(wait, rdb, "rollup:pv", 5*time.Second, lease.Options{AutoRenew: true})
	if err != nil {
		fmt.Println("not owner:", err)
		return
	}
	defer l.Release(ctx)

	// The work stops as soon as the lease is lost or expires locally.
	work := func(ctx context.Context, fence int64) error { return ctx.Err() }
	if err := work(l.Context(), l.Fence()); err != nil {
		fmt.Println("stopped:", context.Cause(l.Context()))
	}
}

func ExampleKeys() {
	key, fence := lease.Keys("", "rollup:pv")
	fmt.Println(key)
	fmt.Println(fence)
	key, _ = lease.Keys("myapp:", "queue")
	fmt.Println(key)
	// Output:
	// abacus:lease:{rollup:pv}
	// abacus:lease:{rollup:pv}:fence
	// myapp:{queue}
}

// Bad input is rejected before any I/O, with an *InvalidError naming the
// argument or field; it wraps ErrInvalid.
func ExampleInvalidError() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	ctx := context.Background()

	_, err := lease.TryAcquire(ctx, rdb, "", time.Second, lease.Options{})
	fmt.Println(err)
	_, err = lease.Acquire(ctx, rdb, "job", 0, lease.Options{})
	fmt.Println(err)
	_, err = lease.Acquire(ctx, rdb, "job", time.Second, lease.Options{RenewInterval: 2 * time.Second})

	var ie *lease.InvalidError
	fmt.Println(errors.Is(err, lease.ErrInvalid), errors.As(err, &ie) && ie.Field == "Options.RenewInterval")
	// Output:
	// lease: invalid name "": must not be empty
	// lease: invalid ttl 0s: must be at least 1ms
	// true true
}

// The errors of a lease's life are told apart with errors.Is.
func ExampleLease_Release_errors() {
	classify := func(err error) string {
		switch {
		case err == nil:
			return "released while held"
		case errors.Is(err, lease.ErrExpired):
			return "expired first: the work after the deadline was unprotected"
		case errors.Is(err, lease.ErrLost):
			return "lost: Redis dropped it while we thought we held it"
		case errors.Is(err, lease.ErrReleased):
			return "already released"
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return "gave up: " + err.Error()
		default:
			return "redis error: " + err.Error()
		}
	}
	fmt.Println(classify(nil))
	fmt.Println(classify(fmt.Errorf("release %q: %w", "job", lease.ErrExpired)))
	fmt.Println(classify(fmt.Errorf("release %q: %w", "job", lease.ErrLost)))
	fmt.Println(classify(fmt.Errorf("acquire %q: %w", "job", context.Canceled)))
	// Output:
	// released while held
	// expired first: the work after the deadline was unprotected
	// lost: Redis dropped it while we thought we held it
	// gave up: acquire "job": context canceled
}
