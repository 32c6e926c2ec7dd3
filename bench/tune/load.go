package tune

import (
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-go/abacus/engine"
)

// load drives counters at a target rate from several goroutines and
// remembers exactly how much it added to each.
type load struct {
	counters []*engine.Counter
	added    [][]int64 // per goroutine, per key
	total    atomic.Int64
}

// picks returns a cycle of key indexes drawn with Zipf exponent skew (or
// uniformly when skew < 0), so the hot loop does not pay for sampling.
func picks(keys int, skew float64, seed int64) []int32 {
	r := rand.New(rand.NewSource(seed))
	out := make([]int32, 1<<16)
	if skew < 0 {
		for i := range out {
			out[i] = int32(r.Intn(keys))
		}
		return out
	}
	z := rand.NewZipf(r, skew, 1, uint64(keys-1))
	for i := range out {
		out[i] = int32(z.Uint64())
	}
	return out
}

// run adds at rate (per second, all goroutines together) until stop is
// closed. Each goroutine paces itself every millisecond, catching up on
// what it owes; a machine that cannot keep up shows in the achieved rate.
func (l *load) run(goroutines int, rate float64, skew float64, stop <-chan struct{}) {
	l.added = make([][]int64, goroutines)
	per := rate / float64(goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		l.added[g] = make([]int64, len(l.counters))
		seq := picks(len(l.counters), skew, int64(g)+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := l.added[g]
			start := time.Now()
			var done int64
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					l.total.Add(done)
					return
				case <-tick.C:
				}
				due := int64(per * time.Since(start).Seconds())
				for ; done < due; done++ {
					k := seq[done&(1<<16-1)]
					l.counters[k].Inc()
					mine[k]++
				}
			}
		}()
	}
	wg.Wait()
}

// want returns the total added to each key.
func (l *load) want() []int64 {
	sum := make([]int64, len(l.counters))
	for _, g := range l.added {
		for k, n := range g {
			sum[k] += n
		}
	}
	return sum
}
