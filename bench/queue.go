package main

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/queue"
)

// queueScenarios compare a reliable queue with naive list commands: half
// the goroutines push one message per call, the other half consume; one
// operation is one message handled.
func queueScenarios(n int) []scenario {
	return []scenario{
		{id: "naive-rpush-lpop", name: "naive LPUSH + RPOP (loses on crash)", group: "queue", baseline: "naive-rpush-lpop", workers: n,
			run: func(r *row) (outcome, error) { return naiveQueue(r, n) }},
		{id: "queue-push-consume", name: "queue Push + Consume (at-least-once)", group: "queue", baseline: "naive-rpush-lpop", workers: n, needsLua: true,
			run: func(r *row) (outcome, error) { return reliableQueue(r, n) }},
	}
}

// produce runs producers that call push until stop, counting messages.
func produce(producers int, stop <-chan struct{}, push func() error) (*atomic.Int64, func() error) {
	var pushed atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := push(); err != nil {
					once.Do(func() { first = err })
					return
				}
				pushed.Add(1)
			}
		}()
	}
	return &pushed, func() error { wg.Wait(); return first }
}

func naiveQueue(r *row, n int) (outcome, error) {
	rdb := r.open(n)
	defer rdb.Close()
	key := r.ns + "list"
	*r.keys = append(*r.keys, key)
	body := make([]byte, 64)
	stop := make(chan struct{})
	pushed, waitProducers := produce(max(n/2, 1), stop, func() error {
		return rdb.LPush(r.ctx, key, body).Err()
	})
	handled, el, err := hammer(max(n/2, 1), r.cfg.duration, r.prog.tick, func(int) (int64, error) {
		err := rdb.RPop(r.ctx, key).Err()
		if errors.Is(err, redis.Nil) {
			time.Sleep(time.Millisecond) // empty: do not spin on Redis
			return 0, nil
		}
		return 1, err
	})
	close(stop)
	if perr := waitProducers(); err == nil {
		err = perr
	}
	return outcome{ops: handled, elapsed: el, note: "pushed " + strconv.FormatInt(pushed.Load(), 10)}, err
}

func reliableQueue(r *row, n int) (outcome, error) {
	rdb := r.open(n + n/2 + 4) // producers, consumers' blocking moves, leases
	defer rdb.Close()
	q, err := queue.New(rdb, "jobs", queue.Options{Prefix: r.ns, Concurrency: max(n/2, 1),
		BlockTimeout: 100 * time.Millisecond, LeaseTTL: 2 * time.Second, RetireAfter: time.Second})
	if err != nil {
		return outcome{}, err
	}
	body := make([]byte, 64)
	var handled atomic.Int64
	ctx, cancel := context.WithCancel(r.ctx)
	consumed := make(chan struct{})
	go func() {
		q.Consume(ctx, func(context.Context, queue.Message) error { handled.Add(1); return nil })
		close(consumed)
	}()
	stop := make(chan struct{})
	pushed, waitProducers := produce(max(n/2, 1), stop, func() error {
		_, err := q.Push(r.ctx, body)
		return err
	})
	start := time.Now()
	_, _, _ = hammer(1, r.cfg.duration, r.prog.tick, func(int) (int64, error) {
		time.Sleep(10 * time.Millisecond)
		return 0, nil
	})
	done := handled.Load()
	el := time.Since(start)
	close(stop)
	perr := waitProducers()
	cancel()
	<-consumed
	return outcome{ops: done, elapsed: el, note: "pushed " + strconv.FormatInt(pushed.Load(), 10)}, perr
}
