package flush

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redisinfo"
	"github.com/abacus-go/abacus/internal/redistest"
)

// tokenSource hands out the deltas queued with add, and records where
// each went by its token: settled (applied), seen (TokenSeen) or restored.
type tokenSource struct {
	queue                   []Delta
	settled, seen, restored map[string]int
}

func newTokenSource() *tokenSource {
	return &tokenSource{settled: map[string]int{}, seen: map[string]int{}, restored: map[string]int{}}
}

func (s *tokenSource) add(ds ...Delta) { s.queue = append(s.queue, ds...) }

func (s *tokenSource) Take(dst []Delta) []Delta {
	dst = append(dst, s.queue...)
	s.queue = s.queue[:0]
	return dst
}

func (s *tokenSource) Settle(ds []Delta) {
	for _, d := range ds {
		if d.TokenSeen {
			s.seen[d.Token]++
		} else {
			s.settled[d.Token]++
		}
	}
}

func (s *tokenSource) Restore(ds []Delta) {
	for _, d := range ds {
		s.restored[d.Token]++
	}
	s.queue = append(s.queue, ds...)
}

// TestTokenDeltaAppliesOnce: a delta whose token Redis holds already, from
// an earlier flush or earlier in the same batch, is not applied and is
// settled as seen; the others are, next to a delta without a token of the
// same key; each token key expires after TokenTTL.
func TestTokenDeltaAppliesOnce(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	src := newTokenSource()
	f := newFlusher(t, rdb, src, Options{RecordPrefix: p + "w:", TokenTTL: time.Hour})
	tok := func(s string) string { return p + "tok:" + s }
	src.add(
		Delta{Key: p + "a", N: 5, Token: tok("1")},
		Delta{Key: p + "a", N: 7, Token: tok("2")},
		Delta{Key: p + "a", N: 100, Token: tok("1")}, // a retry in the same batch
		Delta{Key: p + "a", N: 1},
		Delta{Key: p + "b", N: -2, Token: tok("3")},
	)
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	src.add(
		Delta{Key: p + "a", N: 5, Token: tok("1")}, // a retry after the flush
		Delta{Key: p + "a", N: 3, Token: tok("4")},
	)
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	for key, want := range map[string]int64{"a": 5 + 7 + 1 + 3, "b": -2} {
		if got, _ := rdb.Get(ctx, p+key).Int64(); got != want {
			t.Errorf("GET %s = %d; want %d", key, got, want)
		}
	}
	if src.seen[tok("1")] != 2 || src.settled[tok("1")] != 1 || len(src.seen) != 1 {
		t.Errorf("token 1 settled %d times and seen %d times, seen tokens %v; want 1, 2, only token 1",
			src.settled[tok("1")], src.seen[tok("1")], src.seen)
	}
	for _, id := range []string{"1", "2", "3", "4"} {
		ttl, err := rdb.PTTL(ctx, tok(id)).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("PTTL of token %s = %v, %v; want within (0, 1h]", id, ttl, err)
		}
	}
	if st := f.Stats(); st.KeysFlushed != 5 || st.DeltaFlushed != 5+7+1-2+3 {
		t.Errorf("KeysFlushed = %d, DeltaFlushed = %d; want 5, %d (the deltas applied)", st.KeysFlushed, st.DeltaFlushed, 5+7+1-2+3)
	}
}

// TestTokenDeltasOfAKeyShareOneINCRBY: the deltas of one key whose
// tokens are new cost Redis a SET each and one INCRBY in all, as long as
// the sum stays below 2^53; a delta that would take it further has an
// INCRBY of its own, so the total stays exact.
func TestTokenDeltasOfAKeyShareOneINCRBY(t *testing.T) {
	rdb := redistest.Start(t, redistest.Options{}).Client(t) // its own server, for its command counts
	p := redistest.Prefix(t)
	ctx := context.Background()
	src := newTokenSource()
	f := newFlusher(t, rdb, src, Options{RecordPrefix: p + "w:"})
	for i := range 100 {
		src.add(Delta{Key: p + "hot", N: int64(i + 1), Token: fmt.Sprint(p, "tok:", i)})
	}
	const big = int64(1) << 60
	for i := range 3 {
		src.add(Delta{Key: p + "big", N: big + 1, Token: fmt.Sprint(p, "big:", i)})
	}
	// A delta that a Lua number rounds (2^53+1 reads as 2^53) beside one
	// that keeps the sum below 2^53: summed, they would be off by one.
	src.add(Delta{Key: p + "mixed", N: -10, Token: p + "mixed:0"})
	src.add(Delta{Key: p + "mixed", N: 1<<53 + 1, Token: p + "mixed:1"})
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	info, err := redisinfo.Read(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	calls := info.Calls
	if got, _ := rdb.Get(ctx, p+"hot").Int64(); got != 100*101/2 {
		t.Errorf("GET hot = %d; want %d", got, 100*101/2)
	}
	if got, _ := rdb.Get(ctx, p+"big").Int64(); got != 3*(big+1) {
		t.Errorf("GET big = %d; want %d (exact)", got, 3*(big+1))
	}
	if got, _ := rdb.Get(ctx, p+"mixed").Int64(); got != 1<<53-9 {
		t.Errorf("GET mixed = %d; want %d (exact)", got, int64(1<<53-9))
	}
	// hot: one INCRBY; big: (2^60+1) is above 2^53, so each has its own;
	// mixed: one for 2^53+1, one for the sum of the other.
	if calls["set"] != 105 || calls["incrby"] != 1+3+2 {
		t.Errorf("commands %v; want 105 SET and 6 INCRBY", calls)
	}
}

// TestResentTokenBatchReportsTheSameSeen sends a batch three times, as a
// writer does when replies are lost: a token Redis held at the first
// send is reported seen every time, and the other delta applied once.
func TestResentTokenBatchReportsTheSameSeen(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	rdb.Set(ctx, p+"tok:old", 1, time.Hour) // flushed by another writer
	src := newTokenSource()
	f := newFlusher(t, rdb, src, Options{RecordPrefix: p + "w:"})
	b := &batch{record: f.record(0), seq: 1, deltas: []Delta{
		{Key: p + "a", N: 5, Token: p + "tok:old"},
		{Key: p + "a", N: 3, Token: p + "tok:new"},
	}}
	for send := 1; send <= 3; send++ {
		pending, keyErrs, err := f.send(ctx, []*batch{b})
		if err != nil || len(pending) != 0 || len(keyErrs) != 0 {
			t.Fatalf("send #%d: pending %d, key errors %v, err %v", send, len(pending), keyErrs, err)
		}
		if src.seen[p+"tok:old"] != send || src.settled[p+"tok:new"] != send || len(src.seen) != 1 {
			t.Fatalf("after send #%d: seen %v, applied %v; want the old token seen, the new applied, each %d times",
				send, src.seen, src.settled, send)
		}
		b.doubt = true // as if the reply was lost
	}
	if got, _ := rdb.Get(ctx, p+"a").Int64(); got != 3 {
		t.Fatalf("GET a = %d after sending its batch 3 times; want 3", got)
	}
}

// TestTokenOfRefusedDeltaIsReleased: a delta with a token that Redis
// refuses for its key (a non-integer, an overflow) leaves no token
// behind, so that it applies once the key is fixed; so does a refused
// registration.
func TestTokenOfRefusedDeltaIsReleased(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	ctx := context.Background()
	rdb.Set(ctx, p+"text", "hello", 0)
	rdb.Set(ctx, p+"full", fmt.Sprint(int64(1)<<62), 0)
	rdb.Set(ctx, p+"notaset", "x", 0)
	src := newTokenSource()
	f := newFlusher(t, rdb, src, Options{RecordPrefix: p + "w:"})
	bad := []Delta{
		{Key: p + "text", N: 1, Token: p + "tok:t1"},
		{Key: p + "text", N: 2, Token: p + "tok:t2"},       // summed with t1, refused with it
		{Key: p + "full", N: 1 << 62, Token: p + "tok:f1"}, // above 2^53: an INCRBY of its own, which overflows
		{Key: p + "ok", N: 4, Token: p + "tok:r1", Register: &Registration{Set: p + "notaset", Member: "m", Score: 1}},
	}
	src.add(bad...)
	err := f.Flush(ctx)
	for _, want := range []error{ErrNotInteger, ErrOverflow, ErrWrongType} {
		if !errors.Is(err, want) {
			t.Errorf("Flush error %v does not wrap %v", err, want)
		}
	}
	// One KeyError per key, with the sum of its refused deltas: text's two
	// token adds back it off once, not twice.
	var texts []*KeyError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if ke := (*KeyError)(nil); errors.As(e, &ke) && ke.Key == p+"text" {
			texts = append(texts, ke)
		}
	}
	if len(texts) != 1 || texts[0].Delta != 3 || texts[0].Refusals != 1 {
		t.Errorf("KeyErrors of text = %+v; want one, of delta 3, refused once", texts)
	}
	if got := f.Stats().KeyErrors; got != 4 {
		t.Errorf("Stats.KeyErrors = %d; want 4 (deltas refused)", got)
	}
	for _, d := range bad {
		if src.restored[d.Token] != 1 {
			t.Errorf("delta of %s restored %d times; want 1", d.Token, src.restored[d.Token])
		}
		if n, _ := rdb.Exists(ctx, d.Token).Result(); n != 0 {
			t.Errorf("token %s of a refused delta is in Redis", d.Token)
		}
	}
	rdb.Del(ctx, p+"text", p+"full", p+"notaset")
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush once the keys are fixed: %v", err)
	}
	for key, want := range map[string]int64{"text": 3, "full": 1 << 62, "ok": 4} {
		if got, _ := rdb.Get(ctx, p+key).Int64(); got != want {
			t.Errorf("GET %s = %d; want %d", key, got, want)
		}
	}
}

// TestTokenNeedsExactlyOnce: a Source giving an AtLeastOnce Flusher a
// delta with a token is a bug a plain INCRBY would hide.
func TestTokenNeedsExactlyOnce(t *testing.T) {
	rdb := redistest.Client(t)
	p := redistest.Prefix(t)
	src := newTokenSource()
	f := newFlusher(t, rdb, src, Options{Mode: AtLeastOnce, RecordPrefix: p + "w:"})
	src.add(Delta{Key: p + "a", N: 1, Token: p + "tok"})
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "ExactlyOnce") {
			t.Errorf("Flush of a token delta in AtLeastOnce mode: recovered %v; want a panic naming ExactlyOnce", r)
		}
	}()
	f.Flush(context.Background())
}
