package engine_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/redistest"
)

// inBothModes runs test once per delivery mode, as a subtest, with a
// client, a namespace of its own and an engine in that mode, made with
// opts, that flushes only when told to.
func inBothModes(t *testing.T, opts engine.Options, test func(t *testing.T, rdb *redis.Client, ns string, e *engine.Engine)) {
	for _, mode := range []flush.Mode{flush.ExactlyOnce, flush.AtLeastOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			rdb := redistest.Client(t)
			opts.Namespace, opts.Delivery, opts.FlushInterval = redistest.Prefix(t), mode, 1<<62
			test(t, rdb, opts.Namespace, newEngine(t, rdb, opts))
		})
	}
}

// registered returns e's counter named name, which registers itself in
// set with score.
func registered(t *testing.T, e *engine.Engine, set, name string, score float64) *engine.Counter {
	t.Helper()
	c, err := e.CounterWith(name, engine.CounterOptions{Register: &flush.Registration{Set: set, Member: name, Score: score}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCounterWithRegisters: a counter with CounterOptions.Register adds
// its member to the set with the flush that writes it, also when the
// counter was forgotten before that flush, with the member's score;
// other counters register nothing; in both delivery modes.
func TestCounterWithRegisters(t *testing.T) {
	inBothModes(t, engine.Options{}, func(t *testing.T, rdb *redis.Client, ns string, e *engine.Engine) {
		ctx := context.Background()
		set := ns + "index"
		a := registered(t, e, set, "a", 1)
		b := registered(t, e, set, "b", 2)
		plain, _ := e.Counter("plain")
		a.Add(1)
		b.Add(2)
		plain.Add(3)
		if n := rdb.ZCard(ctx, set).Val(); n != 0 {
			t.Fatalf("%d members before any flush; want 0", n)
		}
		if !e.Forget("b") {
			t.Fatal("Forget(b) = false; want true")
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := rdb.ZRangeWithScores(ctx, set, 0, -1).Result()
		if want := []redis.Z{{Score: 1, Member: "a"}, {Score: 2, Member: "b"}}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("set after the flush = %v, %v; want %v", got, err, want)
		}
		if v, _ := rdb.Get(ctx, ns+"b").Int64(); v != 2 {
			t.Fatalf("forgotten counter b in Redis = %d; want 2", v)
		}
	})
}

// TestRefusedRegistrationRefusesItsDelta: a counter whose registration
// Redis refuses (its sorted set is a string) is not written unregistered,
// in either delivery mode: the flush reports the refusal, naming the set,
// while other counters are written; once the set is fixed, the next flush
// writes and registers it.
func TestRefusedRegistrationRefusesItsDelta(t *testing.T) {
	inBothModes(t, engine.Options{}, func(t *testing.T, rdb *redis.Client, ns string, e *engine.Engine) {
		ctx := context.Background()
		set := ns + "index"
		rdb.Set(ctx, set, "not a set", 0)
		a := registered(t, e, set, "a", 1)
		plain, _ := e.Counter("plain")
		a.Add(1)
		plain.Add(2)
		err := e.Flush(ctx)
		var kerr *flush.KeyError
		if !errors.As(err, &kerr) || !errors.Is(err, flush.ErrWrongType) || !strings.Contains(err.Error(), strconv.Quote(set)) {
			t.Fatalf("Flush = %v; want a KeyError wrapping ErrWrongType that names %q", err, set)
		}
		if n := rdb.Exists(ctx, ns+"a").Val(); n != 0 {
			t.Fatal("a was written although its registration was refused")
		}
		if v, _ := rdb.Get(ctx, ns+"plain").Int64(); v != 2 {
			t.Fatalf("plain in Redis = %d; want 2", v)
		}
		rdb.Del(ctx, set)
		if err := e.Flush(ctx); err != nil {
			t.Fatalf("Flush once the set is fixed: %v", err)
		}
		if v, _ := rdb.Get(ctx, ns+"a").Int64(); v != 1 {
			t.Fatalf("a in Redis = %d; want 1", v)
		}
		if got, err := rdb.ZScore(ctx, set, "a").Result(); err != nil || got != 1 {
			t.Fatalf("score of a = %v, %v; want 1", got, err)
		}
	})
}

// TestCounterTTL: a counter with a TTL of its own expires after it,
// while another in the same engine keeps the engine's KeyTTL and a third,
// with a negative TTL, none; in both delivery modes. The TTLs are long, so
// that no check depends on the machine's speed: their PTTLs are checked
// against them, and the expiry is made by deleting the key. A counter
// written after its key expired counts from zero, with its TTL set anew.
func TestCounterTTL(t *testing.T) {
	const keyTTL, dayTTL = time.Hour, 24 * time.Hour
	inBothModes(t, engine.Options{KeyTTL: keyTTL}, func(t *testing.T, rdb *redis.Client, ns string, e *engine.Engine) {
		ctx := context.Background()
		day, err := e.CounterWith("day", engine.CounterOptions{TTL: dayTTL})
		if err != nil {
			t.Fatal(err)
		}
		forever, _ := e.CounterWith("forever", engine.CounterOptions{TTL: -1})
		day.Add(1)
		forever.Add(1)
		e.Add("all", 1)
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// Half a TTL of slack: PTTLs tell the three apart however slow
		// the machine.
		for _, tc := range []struct {
			name     string
			min, max time.Duration
		}{
			{"day", dayTTL / 2, dayTTL},
			{"all", keyTTL / 2, keyTTL},
			{"forever", -1, -1}, // PTTL -1: the key has no expiry
		} {
			if got := rdb.PTTL(ctx, ns+tc.name).Val(); got < tc.min || got > tc.max {
				t.Errorf("PTTL(%s) = %v; want within [%v, %v]", tc.name, got, tc.min, tc.max)
			}
		}
		if err := rdb.Del(ctx, ns+"day").Err(); err != nil { // day expires
			t.Fatal(err)
		}
		day.Add(2) // counts again from zero, with its TTL set anew
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		v, _ := rdb.Get(ctx, ns+"day").Int64()
		if ttl := rdb.PTTL(ctx, ns+"day").Val(); v != 2 || ttl < dayTTL/2 || ttl > dayTTL {
			t.Fatalf("day after expiring = %d with PTTL %v; want 2 with PTTL within [%v, %v]", v, ttl, dayTTL/2, dayTTL)
		}
	})
}
