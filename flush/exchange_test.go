package flush

import (
	"context"
	"fmt"
	"testing"

	"github.com/abacus-go/abacus/internal/redistest"
)

// TestFlushAllocatesPerBatchNotPerKey guards the flush path: in steady
// state a flush of 20,000 keys allocates a few objects per script call of
// 512 keys (go-redis' command and its parsed reply), none per key.
func TestFlushAllocatesPerBatchNotPerKey(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	const n = 20000
	deltas := make([]Delta, n)
	for i := range deltas {
		deltas[i] = Delta{Key: fmt.Sprintf("pv:/page/%06d", i), N: 1}
	}
	deltas[7].Register = &Registration{Set: p + "windows", Member: "w", Score: 1}
	f := newFlusher(t, rdb, &sliceSource{deltas}, Options{KeyPrefix: p, RecordPrefix: p + "w:", Replicas: -1})
	ctx := context.Background()
	flush := func() {
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	flush() // the first sends EVAL, and fills the buffers
	allocs := testing.AllocsPerRun(5, flush)
	batches := (n + f.opts.BatchKeys - 1) / f.opts.BatchKeys
	t.Logf("%.0f allocations per flush of %d keys", allocs, n)
	if allocs > float64(10*batches) {
		t.Errorf("a flush of %d keys (%d batches) allocates %.0f objects; want at most 10 per batch", n, batches, allocs)
	}
	if got, _ := rdb.Get(ctx, p+deltas[n-1].Key).Int64(); got != 7 {
		t.Errorf("GET %s = %d after 7 flushes; want 7", deltas[n-1].Key, got)
	}
	if got, _ := rdb.ZScore(ctx, p+"windows", "w").Result(); got != 1 {
		t.Errorf("ZSCORE windows w = %v; want 1", got)
	}
}
