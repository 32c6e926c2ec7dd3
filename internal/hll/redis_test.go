package hll_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/hll"
	"github.com/abacus-go/abacus/internal/redistest"
)

// members returns n random members of 0 to 40 bytes, any byte values.
func members(rng *rand.Rand, n int) []string {
	ms := make([]string, n)
	for i := range ms {
		b := make([]byte, rng.IntN(41))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		ms[i] = string(b)
	}
	return ms
}

// pfadd adds ms to key with PFADD, 1,000 members a command.
func pfadd(t *testing.T, rdb *redis.Client, key string, ms []string) {
	t.Helper()
	ctx := context.Background()
	pipe := rdb.Pipeline()
	for i := 0; i < len(ms); i += 1000 {
		args := make([]any, 0, 1000)
		for _, m := range ms[i:min(i+1000, len(ms))] {
			args = append(args, m)
		}
		pipe.PFAdd(ctx, key, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("PFADD: %v", err)
	}
}

// redisRegisters reads key's registers with PFDEBUG GETREG (which turns
// key dense).
func redisRegisters(t *testing.T, rdb *redis.Client, key string) *hll.Registers {
	t.Helper()
	vs, err := rdb.Do(context.Background(), "pfdebug", "getreg", key).Slice()
	if err != nil {
		t.Fatalf("PFDEBUG GETREG %s: %v", key, err)
	}
	if len(vs) != hll.NumRegisters {
		t.Fatalf("PFDEBUG GETREG %s: %d registers", key, len(vs))
	}
	var r hll.Registers
	for i, v := range vs {
		r[i] = uint8(v.(int64))
	}
	return &r
}

func local(ms []string) *hll.Registers {
	var r hll.Registers
	for _, m := range ms {
		r.Set(hll.Pos(m))
	}
	return &r
}

func diff(t *testing.T, what string, got, want *hll.Registers) {
	t.Helper()
	n := 0
	for i := range got {
		if got[i] != want[i] {
			if n < 5 {
				t.Errorf("%s: register %d = %d; want %d", what, i, got[i], want[i])
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%s: %d registers differ", what, n)
	}
}

// TestPosMatchesPFADD sketches members locally and with PFADD and compares
// every register, for a set small enough for Redis to keep sparse and for
// one of 100,000 members.
func TestPosMatchesPFADD(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{50, 100_000} {
		ms := members(rng, n)
		key := fmt.Sprint(ns, n)
		pfadd(t, rdb, key, ms)
		diff(t, fmt.Sprintf("%d members", n), local(ms), redisRegisters(t, rdb, key))
	}
}

// TestRedisReadsEncode stores Encode's output with SET and checks that
// Redis reads it as the same registers, in the same encoding, with the
// same count; and that MergeEncoded reads what PFADD wrote.
func TestRedisReadsEncode(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	ns := redistest.Prefix(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 10, 300, 1000, 3000, 30_000, 200_000} {
		ms := members(rng, n)
		want := local(ms)
		b := hll.Encode(nil, want.Updates(nil))
		key := fmt.Sprint(ns, "set:", n)
		if err := rdb.Set(ctx, key, b, 0).Err(); err != nil {
			t.Fatal(err)
		}
		enc, err := rdb.Do(ctx, "pfdebug", "encoding", key).Text()
		if wantEnc := map[byte]string{0: "dense", 1: "sparse"}[b[4]]; err != nil || enc != wantEnc {
			t.Errorf("%d members: PFDEBUG ENCODING = %q, %v; want %q", n, enc, err, wantEnc)
		}
		count, err := rdb.PFCount(ctx, key).Result()
		if err != nil {
			t.Fatalf("%d members: PFCOUNT: %v", n, err)
		}
		if est := want.Estimate(); uint64(count) != est {
			t.Errorf("%d members: PFCOUNT = %d; Estimate = %d", n, count, est)
		}
		diff(t, fmt.Sprintf("%d members, SET", n), redisRegisters(t, rdb, key), want)

		ref := fmt.Sprint(ns, "pfadd:", n)
		pfadd(t, rdb, ref, append(ms, "x")) // PFADD with no member creates nothing
		raw, err := rdb.Get(ctx, ref).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var got hll.Registers
		if err := got.MergeEncoded(raw); err != nil {
			t.Fatalf("%d members: MergeEncoded(PFADD's): %v", n, err)
		}
		withX := *want
		withX.Set(hll.Pos("x"))
		diff(t, fmt.Sprintf("%d members, PFADD", n), &got, &withX)
	}
}

// TestEstimateMatchesPFCOUNT compares Estimate with PFCOUNT on register
// sets drawn as HyperLogLogs of 10 to 10^18 members would hold them,
// including registers at the highest rank, where the estimator's tau term
// is not zero.
func TestEstimateMatchesPFCOUNT(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	ns := redistest.Prefix(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for e := 1; e <= 18; e++ {
		for trial := range 5 {
			// A register's rank is the highest of Poisson(λ) geometric
			// draws: P(rank <= k) = exp(-λ 2^-k).
			lambda := math.Pow(10, float64(e)) / hll.NumRegisters
			var atMost [hll.MaxRank + 1]float64
			for k := range atMost {
				atMost[k] = math.Exp(-lambda * math.Pow(2, -float64(k)))
			}
			var r hll.Registers
			for i := range r {
				u := rng.Float64()
				k := 0
				for k < hll.MaxRank && atMost[k] < u {
					k++
				}
				r[i] = uint8(k)
			}
			if trial == 4 {
				r[rng.IntN(hll.NumRegisters)] = hll.MaxRank
			}
			key := fmt.Sprint(ns, e, ":", trial)
			if err := rdb.Set(ctx, key, hll.Encode(nil, r.Updates(nil)), 0).Err(); err != nil {
				t.Fatal(err)
			}
			count, err := rdb.PFCount(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if est := r.Estimate(); uint64(count) != est {
				t.Errorf("10^%d members, trial %d: PFCOUNT = %d; Estimate = %d", e, trial, count, est)
			}
		}
	}
}
