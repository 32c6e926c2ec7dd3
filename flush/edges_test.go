package flush

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// inBubble runs f in a testing/synctest bubble, where time is fake and
// moves only when every goroutine of the bubble is blocked, with a client
// of its own on the test Redis: for tests of backoffs and ages that must
// not wait for them. Network I/O is real; Redis' clock is not faked.
func inBubble(t *testing.T, f func(t *testing.T, rdb *redis.Client)) {
	addr := redistest.Client(t).Options().Addr
	synctest.Test(t, func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		f(t, rdb)
	})
}

// TestFlushWritesEverythingBeyondTheBatchCap: one Flush of more batches
// than a round may have in doubt per group still writes every key.
func TestFlushWritesEverythingBeyondTheBatchCap(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	src := newMapSource()
	const keys = 5000 // 5000 batches of 1 key: more than maxBatchesPerGroup
	for i := range keys {
		src.add(fmt.Sprintf("%sk%d", p, i), 1)
	}
	f := newFlusher(t, rdb, src, Options{BatchKeys: 1, RecordPrefix: p + "w:"})
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	n := 0
	for i := range keys {
		if v, _ := rdb.Get(ctx, fmt.Sprintf("%sk%d", p, i)).Int64(); v == 1 {
			n++
		}
	}
	if n != keys {
		t.Fatalf("Flush returned nil with %d of %d keys written", n, keys)
	}
}

// TestSharedWriterLabelLosesNothing: two Flushers configured with the same
// WriterID still apply all of their batches.
func TestSharedWriterLabelLosesNothing(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	var fs []*Flusher
	var srcs []*mapSource
	for range 2 {
		src := newMapSource()
		srcs = append(srcs, src)
		fs = append(fs, newFlusher(t, rdb, src, Options{WriterID: "web-1", RecordPrefix: p + "w:"}))
	}
	if fs[0].WriterID() == fs[1].WriterID() {
		t.Fatalf("two Flushers labelled web-1 share writer ID %q", fs[0].WriterID())
	}
	if !strings.HasPrefix(fs[0].WriterID(), "web-1-") {
		t.Errorf("WriterID() = %q; want the label web-1 first", fs[0].WriterID())
	}
	for round := range 3 {
		for i, f := range fs {
			srcs[i].add(p+"hits", 5)
			if err := f.Flush(ctx); err != nil {
				t.Fatalf("round %d, writer %d: %v", round, i, err)
			}
		}
	}
	if got, _ := rdb.Get(ctx, p+"hits").Int64(); got != 30 {
		t.Fatalf("GET hits = %d; want 30", got)
	}
}

// TestRefusedKeyBacksOff: background flushes send a key Redis keeps
// refusing with a doubling backoff, not every interval; an explicit Flush
// tries it at once, and once fixed it is written.
func TestRefusedKeyBacksOff(t *testing.T) {
	inBubble(t, func(t *testing.T, rdb *redis.Client) {
		p := redistest.Prefix(t)
		ctx := context.Background()
		rdb.Set(ctx, p+"bad", "text", 0)
		var reports int
		src := newMapSource()
		f := newFlusher(t, rdb, src, Options{
			Interval: 10 * time.Millisecond, MaxKeyBackoff: time.Minute, RecordPrefix: p + "w:",
			OnError: func(err error) {
				if errors.Is(err, ErrNotInteger) {
					reports++
				}
			},
		})
		src.add(p+"bad", 1)
		const flushes = 1000 // 10 s of background flushes
		for i := range flushes {
			src.add(p+"good", 1)
			err := f.flush(ctx, false)
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != p+"bad" || !errors.Is(err, ErrNotInteger) {
				t.Fatalf("flush %d = %v; want a *KeyError for %s", i, err, p+"bad")
			}
			time.Sleep(10 * time.Millisecond)
		}
		st := f.Stats()
		// Backoffs of 20ms, 40ms, ... 10.24s: 10 refusals in 10 s.
		if st.KeyErrors > 12 || reports != int(st.KeyErrors) {
			t.Fatalf("%d refusals, %d OnError calls in %d flushes; want at most 12 of each", st.KeyErrors, reports, flushes)
		}
		if got, _ := rdb.Get(ctx, p+"good").Int64(); got != flushes {
			t.Fatalf("GET good = %d; want %d", got, flushes)
		}
		if src.pending[p+"bad"] != 1 {
			t.Fatalf("refused delta not kept: pending %d", src.pending[p+"bad"])
		}
		rdb.Del(ctx, p+"bad")
		if err := f.Flush(ctx); err != nil {
			t.Fatalf("Flush after the key was fixed: %v", err)
		}
		if got, _ := rdb.Get(ctx, p+"bad").Int64(); got != 1 {
			t.Fatalf("GET bad = %d after fixing it; want 1", got)
		}
		t.Logf("%d flushes at 10ms: %d refusals, %d OnError calls", flushes, st.KeyErrors, reports)
	})
}

// TestRestoredDeltaKeepsItsAge: a delta written late counts its full age
// in MaxStaleness.
func TestRestoredDeltaKeepsItsAge(t *testing.T) {
	inBubble(t, func(t *testing.T, rdb *redis.Client) {
		p := redistest.Prefix(t)
		ctx := context.Background()
		rdb.Set(ctx, p+"bad", "text", 0)
		src := newMapSource()
		f := newFlusher(t, rdb, src, Options{RecordPrefix: p + "w:"})
		src.add(p+"bad", 1)
		time.Sleep(time.Second)
		f.Flush(ctx) // refused: restored
		for range 10 {
			time.Sleep(time.Second)
			f.Flush(ctx)
		}
		rdb.Del(ctx, p+"bad")
		time.Sleep(time.Second)
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if st := f.Stats(); st.MaxStaleness < 12*time.Second {
			t.Fatalf("MaxStaleness = %v for a delta written 12 s after it was added", st.MaxStaleness)
		}
	})
}

// TestRecordHasNoTTLAndLostRecordIsReported: records are not evictable
// under volatile-* policies, and a batch in doubt whose record vanished is
// reported, not applied twice.
func TestRecordHasNoTTLAndLostRecordIsReported(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	var reported []error
	f := newFlusher(t, rdb, newMapSource(), Options{RecordPrefix: p + "w:", OnError: func(err error) { reported = append(reported, err) }})
	first := &batch{record: f.record(0), seq: 1, deltas: []Delta{{Key: p + "a", N: 1}}}
	if pending, _, err := f.send(ctx, []*batch{first}); err != nil || len(pending) > 0 {
		t.Fatalf("send 1: %v", err)
	}
	if ttl, _ := rdb.PTTL(ctx, first.record).Result(); ttl != -1 {
		t.Fatalf("record TTL %v; want none", ttl)
	}
	if at, _ := rdb.HGet(ctx, first.record, "t").Int64(); at <= 0 {
		t.Fatalf("record field t = %d; want the server time", at)
	}
	// Batch 2 is applied but its reply is lost; then the record vanishes.
	second := &batch{record: f.record(0), seq: 2, deltas: []Delta{{Key: p + "a", N: 1000}}}
	if pending, _, err := f.send(ctx, []*batch{second}); err != nil || len(pending) > 0 {
		t.Fatalf("send 2: %v", err)
	}
	f.floor[0], second.doubt = 1, true // as if the reply to batch 2 was lost
	rdb.Del(ctx, first.record)
	pending, errs, err := f.send(ctx, []*batch{second})
	if err != nil || len(pending) > 0 {
		t.Fatalf("resend: pending %d, %v", len(pending), err)
	}
	var le *LostError
	if len(errs) != 1 || !errors.As(errs[0], &le) || !errors.Is(errs[0], ErrRecordLost) || le.Delta != 1000 || le.Deltas[p+"a"] != 1000 {
		t.Fatalf("resend errors %v; want one *LostError for delta 1000", errs)
	}
	if Retryable(errs[0]) {
		t.Error("a LostError is retryable")
	}
	if got, _ := rdb.Get(ctx, p+"a").Int64(); got != 1001 {
		t.Fatalf("GET a = %d; want 1001 (batch 2 applied once)", got)
	}
	if st := f.Stats(); st.LostBatches != 1 || st.LostDelta != 1000 || len(reported) != 1 {
		t.Fatalf("LostBatches %d, LostDelta %d, %d reports; want 1, 1000, 1", st.LostBatches, st.LostDelta, len(reported))
	}
}

// TestFreshBatchAfterLostRecordIsApplied: a batch that was never in doubt
// is applied when the record vanished before it, though Redis first
// answers that the record regressed: only a batch whose earlier send got
// no answer may be given up as lost.
func TestFreshBatchAfterLostRecordIsApplied(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	src := newMapSource()
	f := newFlusher(t, rdb, src, Options{RecordPrefix: p + "w:"})
	src.add(p+"a", 1)
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, f.record(0))
	src.add(p+"a", 1000)
	err := f.Flush(ctx)
	if errors.Is(err, ErrRecordLost) {
		t.Fatalf("Flush = %v; want no LostError: the batch was never in doubt", err)
	}
	if got, _ := rdb.Get(ctx, p+"a").Int64(); got != 1001 {
		t.Fatalf("GET a = %d; want 1001", got)
	}
	if st := f.Stats(); st.LostBatches != 0 || st.Resent != 0 {
		t.Fatalf("LostBatches %d, Resent %d; want 0, 0", st.LostBatches, st.Resent)
	}
}

// TestFirstErrorIsReported: under maxmemory with noeviction Redis refuses
// the batches; the error names the out-of-memory cause, not the batches
// refused after the first only because it is in doubt.
func TestFirstErrorIsReported(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	ctx := context.Background()
	src := newMapSource()
	var reported []error
	f := newFlusher(t, rdb, src, Options{BatchKeys: 10, OnError: func(err error) { reported = append(reported, err) }})
	src.add("warm", 1)
	if err := f.Flush(ctx); err != nil { // caches the script
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		src.add(fmt.Sprint("k", i), 1)
	}
	for i := range 3 {
		err := f.Flush(ctx)
		if !errors.Is(err, ErrOutOfMemory) || !errors.Is(err, ErrPending) {
			t.Fatalf("Flush %d = %v; want ErrPending wrapping ErrOutOfMemory", i, err)
		}
	}
	for _, err := range reported {
		if !errors.Is(err, ErrOutOfMemory) {
			t.Fatalf("OnError got %v; want every report to name ErrOutOfMemory", err)
		}
	}
	rdb.ConfigSet(ctx, "maxmemory", "0")
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush after memory was freed: %v", err)
	}
	for i := range 100 {
		if got, _ := rdb.Get(ctx, fmt.Sprint("k", i)).Int64(); got != 1 {
			t.Fatalf("GET k%d = %d; want 1", i, got)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want error
	}{
		{"OOM command not allowed when used memory > 'maxmemory'.", ErrOutOfMemory},
		{"READONLY You can't write against a read only replica.", ErrReadOnly},
		{"NOSCRIPT No matching script.", ErrNoScript},
		{"BUSY Redis is busy running a script.", ErrBusy},
		{"LOADING Redis is loading the dataset in memory", ErrLoading},
		{"MASTERDOWN Link with MASTER is down", ErrMasterDown},
		{"CLUSTERDOWN The cluster is down", ErrClusterDown},
		{"NOREPLICAS Not enough good replicas to write.", ErrNoReplicas},
	} {
		cause := errors.New(tc.msg)
		if got := classify(cause); !errors.Is(got, tc.want) || !errors.Is(got, cause) {
			t.Errorf("classify(%q) = %v; want it to wrap %v and the cause", tc.msg, got, tc.want)
		}
	}
}

func TestRingIsRejected(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	if _, err := New(ring, newMapSource(), Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("New(Ring) error = %v; want ErrInvalid", err)
	}
}

// TestPipelineShrinksAfterTimeouts: pipelines that time out as a whole
// are halved down to one batch, and grow back after successes.
func TestPipelineShrinksAfterTimeouts(t *testing.T) {
	f := newFlusher(t, redis.NewClient(&redis.Options{}), newMapSource(), Options{BatchKeys: 512, PipelineKeys: 4096})
	for _, tc := range []struct {
		timedOut bool
		want     int
	}{
		{true, 2048}, {true, 1024}, {true, 512}, {true, 512},
		{false, 1024}, {false, 2048}, {false, 4096}, {false, 4096},
	} {
		f.sized(tc.timedOut)
		if got := f.pipelineKeys(); got != tc.want {
			t.Fatalf("after sized(%v): pipelineKeys = %d; want %d", tc.timedOut, got, tc.want)
		}
	}
}
