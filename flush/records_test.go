package flush

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
)

// TestWriterRecordsExpire runs 1,000 short-lived writers, one flush each:
// each leaves one record, and all of them expire RecordTTL later.
func TestWriterRecordsExpire(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	const writers = 1000
	for i := range writers {
		src := newMapSource()
		src.add(p+"hits", 1)
		f := newFlusher(t, rdb, src, Options{RecordPrefix: p + "w:", RecordTTL: time.Second})
		if err := f.Flush(ctx); err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	count := func() int {
		keys, err := rdb.Keys(ctx, p+"w:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if n := count(); n != writers {
		t.Fatalf("%d writer records after %d writers; want %d", n, writers, writers)
	}
	if got, _ := rdb.Get(ctx, p+"hits").Int64(); got != writers {
		t.Fatalf("GET hits = %d; want %d", got, writers)
	}
	deadline := time.Now().Add(30 * time.Second)
	for count() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d writer records still there 30 s after their 1 s TTL", count())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d records before expiry, 0 after", writers)
}
