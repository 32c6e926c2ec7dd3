package engine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestValueNeverCountsADeltaTwiceOrMisses reads a counter while it is
// incremented and flushed continually. With one writer, Value must
// lie between the Adds completed before the call and those completed
// after it: a GET that overlapped a flush must not see a delta both in
// Redis and still in flight, nor in neither. With other counters dirty,
// each take from the table locks the engine many times (once per chunk).
func TestValueNeverCountsADeltaTwiceOrMisses(t *testing.T) {
	for _, tc := range []struct {
		age    time.Duration
		others int
		every  time.Duration // reads wait for v to leave a flush: leave them gaps
	}{{-1, 0, time.Millisecond}, {time.Hour, 0, time.Millisecond}, {-1, 1000, 100 * time.Millisecond}} {
		t.Run(fmt.Sprintf("MaxReadAge=%v/others=%d", tc.age, tc.others), func(t *testing.T) {
			rdb := redistest.Client(t)
			e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t), FlushInterval: tc.every, MaxReadAge: tc.age})
			c, _ := e.Counter("v")
			others := make([]*engine.Counter, tc.others)
			for i := range others {
				others[i], _ = e.Counter(fmt.Sprint("other", i))
			}
			var done atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					c.Inc()
					done.Add(1)
				}
			}()
			go func() {
				defer wg.Done()
				for i := 0; len(others) > 0; i++ {
					if i%len(others) == 0 {
						select {
						case <-stop:
							return
						default:
						}
					}
					others[i%len(others)].Inc()
				}
			}()
			ctx := context.Background()
			reads := 3000
			if testing.Short() || tc.others > 0 { // a read waits for v to leave a flush
				reads = 300
			}
			for i := 0; i < reads; i++ {
				lo := done.Load()
				v, err := c.Value(ctx)
				hi := done.Load() + 1 // an Inc may have landed before done.Add
				if err != nil {
					t.Fatal(err)
				}
				if v < lo || v > hi {
					close(stop)
					wg.Wait()
					t.Fatalf("read %d: Value() = %d; want within [%d, %d]", i, v, lo, hi)
				}
			}
			close(stop)
			wg.Wait()
			st := e.Stats()
			t.Logf("%d reads (%d GETs) across %d flushes", st.Reads, st.ReadRoundTrips, st.Flushes)
		})
	}
}
