package engine_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestValueNeverCountsADeltaTwiceOrMisses reads a counter while it is
// incremented and flushed every millisecond. With one writer, Value must
// lie between the Adds completed before the call and those completed
// after it: a GET that overlapped a flush must not see a delta both in
// Redis and still in flight, nor in neither.
func TestValueNeverCountsADeltaTwiceOrMisses(t *testing.T) {
	for _, age := range []time.Duration{-1, time.Hour} {
		t.Run("MaxReadAge="+age.String(), func(t *testing.T) {
			rdb := redistest.Client(t)
			e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t), FlushInterval: time.Millisecond, MaxReadAge: age})
			c, _ := e.Counter("v")
			var done atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
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
			ctx := context.Background()
			reads := 3000
			if testing.Short() {
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
