package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// hammer runs op from n goroutines until d has passed and returns the
// operations done and the time they took. op(g) does some operations for
// goroutine g and returns how many; it is called again until time is up,
// so it should take well under d (batch cheap operations). The first error
// stops every goroutine and is returned with the count so far.
func hammer(n int, d time.Duration, tick func(elapsed time.Duration), op func(g int) (int64, error)) (int64, time.Duration, error) {
	var (
		stop  atomic.Bool
		total atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	start := time.Now()
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine int64
			for !stop.Load() {
				k, err := op(g)
				mine += k
				if err != nil {
					once.Do(func() { first = err })
					stop.Store(true)
				}
			}
			total.Add(mine)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	for waiting := true; waiting; {
		select {
		case <-t.C:
			stop.Store(true)
			waiting = false
		case <-done:
			waiting = false
		case <-ticker.C:
			if tick != nil {
				tick(time.Since(start))
			}
		}
	}
	<-done
	return total.Load(), time.Since(start), first
}
