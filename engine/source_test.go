package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestFlushAllocatesPerBatchNotPerCounter guards the flush path end to
// end: taking, batching, sending and settling 20,000 dirty counters
// allocates a few objects per script call of 512 keys (go-redis' command
// and its parsed reply), none per counter.
func TestFlushAllocatesPerBatchNotPerCounter(t *testing.T) {
	rdb := redistest.Client(t)
	e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t), FlushInterval: time.Hour, Replicas: -1})
	const n = 20000
	counters := make([]*engine.Counter, n)
	for i := range counters {
		counters[i], _ = e.Counter(fmt.Sprintf("pv:/page/%06d", i))
	}
	ctx := context.Background()
	flush := func() {
		for _, c := range counters {
			c.Inc()
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	flush() // the first sends EVAL, and fills the flusher's buffers
	allocs := testing.AllocsPerRun(5, flush)
	batches := (n + 511) / 512
	t.Logf("%.0f allocations per flush of %d counters", allocs, n)
	if allocs > float64(10*batches) {
		t.Errorf("a flush of %d counters (%d batches) allocates %.0f objects; want at most 10 per batch", n, batches, allocs)
	}
	if v, err := counters[n-1].Value(ctx); err != nil || v != 7 {
		t.Errorf("Value = %d, %v after 7 flushes; want 7", v, err)
	}
}
