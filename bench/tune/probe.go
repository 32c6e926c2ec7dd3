package tune

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redisinfo"
)

// probe measures staleness as a reader of Redis sees it: it adds 1 to its
// own counter at a random moment of the flush cycle, then polls Redis
// until the new value is there.
type probe struct {
	rdb  redis.UniversalClient
	c    *engine.Counter
	key  string        // the counter's Redis key
	poll time.Duration // resolution
	// sent counts the request bytes of the GETs sent, so their load can
	// be taken out of the Redis figures.
	sent *atomic.Int64
}

// pollPeriod is the probes' resolution for interval iv: fine enough to
// matter against iv, coarse enough not to flood Redis.
func pollPeriod(iv time.Duration) time.Duration {
	return min(max(iv/20, time.Millisecond), 50*time.Millisecond)
}

// run samples until stop is closed and returns the delays observed.
func (p *probe) run(ctx context.Context, iv time.Duration, stop <-chan struct{}) ([]time.Duration, error) {
	var samples []time.Duration
	var added int64
	for {
		// A random phase, so samples cover the whole flush cycle.
		select {
		case <-stop:
			return samples, nil
		case <-time.After(rand.N(iv) + time.Millisecond):
		}
		added++
		p.c.Add(1)
		t0 := time.Now()
		for {
			p.sent.Add(redisinfo.RequestBytes("get", p.key))
			v, err := p.rdb.Get(ctx, p.key).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				return samples, err
			}
			if v >= added {
				samples = append(samples, time.Since(t0))
				break
			}
			select {
			case <-stop:
				return samples, nil // the last add is not seen yet: no sample
			case <-time.After(p.poll):
			}
		}
	}
}

// runProbes runs probes concurrently and merges their samples, sorted.
func runProbes(ctx context.Context, probes []*probe, iv time.Duration, stop <-chan struct{}) ([]time.Duration, error) {
	var (
		mu  sync.Mutex
		all []time.Duration
		wg  sync.WaitGroup
		err error
	)
	for _, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, perr := p.run(ctx, iv, stop)
			mu.Lock()
			all = append(all, s...)
			err = errors.Join(err, perr)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(all)
	return all, err
}

// quantile returns the q-quantile of sorted samples (nearest rank), 0 for
// none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
