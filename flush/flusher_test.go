package flush

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// mapSource is a Source over a map, recording what was settled.
type mapSource struct {
	mu       sync.Mutex
	pending  map[string]int64
	inflight map[string]int64
	settled  map[string]int64
}

func newMapSource() *mapSource {
	return &mapSource{pending: map[string]int64{}, inflight: map[string]int64{}, settled: map[string]int64{}}
}

func (s *mapSource) add(key string, n int64) {
	s.mu.Lock()
	s.pending[key] += n
	s.mu.Unlock()
}

func (s *mapSource) Take(dst []Delta) []Delta {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range s.pending {
		if n != 0 {
			dst = append(dst, Delta{Key: k, N: n})
			s.inflight[k] += n
		}
		delete(s.pending, k)
	}
	return dst
}

func (s *mapSource) Settle(ds []Delta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		s.inflight[d.Key] -= d.N
		s.settled[d.Key] += d.N
	}
}

func (s *mapSource) Restore(ds []Delta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		s.inflight[d.Key] -= d.N
		s.pending[d.Key] += d.N
	}
}

func newFlusher(t *testing.T, rdb redis.UniversalClient, src Source, opts Options) *Flusher {
	t.Helper()
	f, err := New(rdb, src, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f
}

func TestFlushAppliesDeltasInBatches(t *testing.T) {
	for _, tc := range []struct {
		mode       Mode
		roundTrips uint64
	}{
		// 100 keys in batches of ≤ 7 keys, whole batches per pipeline of
		// ≤ 20 keys: 7+7 six times, then 7+7+2.
		{ExactlyOnce, 7},
		// Plain INCRBYs fill pipelines of 20.
		{AtLeastOnce, 5},
	} {
		mode := tc.mode
		t.Run(mode.String(), func(t *testing.T) {
			rdb := redistest.Client(t)
			p := redistest.Prefix(t)
			src := newMapSource()
			f := newFlusher(t, rdb, src, Options{Mode: mode, BatchKeys: 7, PipelineKeys: 20, RecordPrefix: p + "w:"})
			ctx := context.Background()
			for i := range 100 {
				src.add(fmt.Sprint(p, "k", i), int64(i+1))
			}
			src.add(p+"zero", 0)
			if err := f.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			for i := range 100 {
				if got, _ := rdb.Get(ctx, fmt.Sprint(p, "k", i)).Int64(); got != int64(i+1) {
					t.Fatalf("GET k%d = %d; want %d", i, got, i+1)
				}
			}
			if n, _ := rdb.Exists(ctx, p+"zero").Result(); n != 0 {
				t.Fatal("a zero delta was written")
			}
			st := f.Stats()
			if st.KeysFlushed != 100 || st.RoundTrips != tc.roundTrips {
				t.Fatalf("KeysFlushed = %d, RoundTrips = %d; want 100, %d", st.KeysFlushed, st.RoundTrips, tc.roundTrips)
			}
		})
	}
}

// TestResentBatchIsNotAppliedTwice sends the same batch twice, as a writer
// does when a reply is lost: the second send is recognised.
func TestResentBatchIsNotAppliedTwice(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	rdb.Set(ctx, p+"bad", "not a number", 0)
	f := newFlusher(t, rdb, newMapSource(), Options{RecordPrefix: p + "w:"})
	b := &batch{record: f.record(0), seq: 1, deltas: []Delta{{Key: p + "a", N: 5}, {Key: p + "bad", N: 1}}}
	for send := 1; send <= 3; send++ {
		pending, keyErrs, err := f.send(ctx, []*batch{b})
		if err != nil || len(pending) != 0 {
			t.Fatalf("send #%d: pending %d, err %v", send, len(pending), err)
		}
		if len(keyErrs) != 1 || !errors.Is(keyErrs[0], ErrNotInteger) {
			t.Fatalf("send #%d: key errors %v; want one ErrNotInteger (remembered for duplicates)", send, keyErrs)
		}
		b.doubt = true // as if the reply was lost
	}
	if got, _ := rdb.Get(ctx, p+"a").Int64(); got != 5 {
		t.Fatalf("GET a = %d after sending its batch 3 times; want 5", got)
	}
	if st := f.Stats(); st.Duplicates != 2 || st.Resent != 2 {
		t.Fatalf("Duplicates = %d, Resent = %d; want 2, 2", st.Duplicates, st.Resent)
	}
}

// TestOutOfOrderBatchWaits checks the script refuses a batch whose
// predecessor was never applied, so that the predecessor cannot later be
// mistaken for a duplicate.
func TestOutOfOrderBatchWaits(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	f := newFlusher(t, rdb, newMapSource(), Options{RecordPrefix: p + "w:"})
	first := &batch{record: f.record(0), seq: 1, deltas: []Delta{{Key: p + "a", N: 1}}}
	second := &batch{record: f.record(0), seq: 2, deltas: []Delta{{Key: p + "a", N: 10}}}
	pending, _, _ := f.send(ctx, []*batch{second})
	if len(pending) != 1 {
		t.Fatal("batch 2 applied before batch 1")
	}
	pending, _, err := f.send(ctx, []*batch{first, second})
	if err != nil || len(pending) != 0 {
		t.Fatalf("in order: pending %d, err %v", len(pending), err)
	}
	if got, _ := rdb.Get(ctx, p+"a").Int64(); got != 11 {
		t.Fatalf("GET a = %d; want 11", got)
	}
}

func TestFlushRecoversFromScriptFlush(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	src := newMapSource()
	f := newFlusher(t, rdb, src, Options{RecordPrefix: p + "w:"})
	src.add(p+"a", 1)
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	src.add(p+"a", 2)
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush after SCRIPT FLUSH: %v", err)
	}
	if got, _ := rdb.Get(ctx, p+"a").Int64(); got != 3 {
		t.Fatalf("GET a = %d; want 3", got)
	}
}

func TestKeyErrorsKeepTheirDeltaAndSpareOtherKeys(t *testing.T) {
	for _, mode := range []Mode{ExactlyOnce, AtLeastOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			rdb := redistest.Client(t)
			p := redistest.Prefix(t)
			ctx := context.Background()
			rdb.Set(ctx, p+"text", "hello", 0)
			rdb.RPush(ctx, p+"list", "x")
			rdb.Set(ctx, p+"big", fmt.Sprint(int64(1)<<62), 0)
			var reported []error
			src := newMapSource()
			f := newFlusher(t, rdb, src, Options{Mode: mode, RecordPrefix: p + "w:", OnError: func(err error) { reported = append(reported, err) }})
			src.add(p+"text", 1)
			src.add(p+"list", 2)
			src.add(p+"big", 1<<62)
			for i := range 50 {
				src.add(fmt.Sprint(p, "ok", i), 3)
			}
			err := f.Flush(ctx)
			for _, want := range []struct {
				key string
				err error
			}{{p + "text", ErrNotInteger}, {p + "list", ErrWrongType}, {p + "big", ErrOverflow}} {
				var ke *KeyError
				found := false
				for _, e := range reported {
					if errors.As(e, &ke) && ke.Key == want.key && errors.Is(e, want.err) {
						found = true
					}
				}
				if !found {
					t.Errorf("no KeyError for %s wrapping %v; reported %v", want.key, want.err, reported)
				}
				if !errors.Is(err, want.err) {
					t.Errorf("Flush error %v does not wrap %v", err, want.err)
				}
				if src.pending[want.key] == 0 {
					t.Errorf("delta of refused key %s was not given back", want.key)
				}
			}
			for i := range 50 {
				if got, _ := rdb.Get(ctx, fmt.Sprint(p, "ok", i)).Int64(); got != 3 {
					t.Fatalf("GET ok%d = %d; want 3", i, got)
				}
			}
		})
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []Options{
		{Interval: -1}, {BatchKeys: -1}, {PipelineKeys: -5}, {Timeout: -1},
		{MaxBackoff: -1}, {RecordTTL: -1}, {KeyTTL: -1}, {Mode: 9},
		{TokenTTL: -1}, {TokenTTL: time.Microsecond},
	} {
		if _, err := New(redis.NewClient(&redis.Options{}), newMapSource(), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("New(%+v) error = %v; want ErrInvalid", o, err)
		}
	}
}

func TestRetryable(t *testing.T) {
	keyErr := &KeyError{Key: "k", Delta: 1, Err: ErrNotInteger}
	pending := &PendingError{Err: errors.New("EOF")}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{keyErr, false},
		{errors.Join(keyErr, keyErr), false},
		{pending, true},
		{errors.Join(pending, keyErr), true},
		{context.DeadlineExceeded, true},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}
