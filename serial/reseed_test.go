package serial

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
)

func TestReseed(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	const big = 1<<53 + 1 // not exact as a Lua number
	tests := []struct {
		name    string
		initial any // nil: key missing
		floor   int64
		want    int64
		wantErr error
	}{
		{"missing key", nil, 500, 500, nil},
		{"below floor", 100, 500, 500, nil},
		{"equal", 500, 500, 500, nil},
		{"above floor is left alone", 900, 500, 900, nil},
		{"shorter above", 99, 100, 100, nil},
		{"lexically larger but smaller", 9, 10, 10, nil},
		{"negative", -5, 0, 0, nil},
		{"zero", 0, 7, 7, nil},
		{"beyond 2^53 raised by one", big - 1, big, big, nil},
		{"beyond 2^53 kept", big, big - 1, big, nil},
		{"max int64", math.MaxInt64, 1, math.MaxInt64, nil},
		{"not an integer", "abc", 5, 0, ErrNotInteger},
		{"leading zeros", "007", 5, 0, ErrNotInteger},
		{"negative floor", nil, -1, 0, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := redistest.Prefix(t) + "seed"
			if tt.initial != nil {
				rdb.Set(ctx, key, tt.initial, 0)
			}
			got, err := Reseed(ctx, rdb, key, tt.floor)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("Reseed(%v, %d) = %d, %v; want %d, %v", tt.initial, tt.floor, got, err, tt.want, tt.wantErr)
			}
			if err != nil {
				return
			}
			if v, err := rdb.Get(ctx, key).Int64(); err != nil || v != tt.want {
				t.Errorf("GET after Reseed = %d, %v; want %d", v, err, tt.want)
			}
		})
	}
	t.Run("keeps TTL", func(t *testing.T) {
		key := redistest.Prefix(t) + "ttl"
		rdb.Set(ctx, key, 1, time.Hour)
		if _, err := Reseed(ctx, rdb, key, 10); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.TTL(ctx, key).Val(); ttl <= 0 {
			t.Errorf("TTL after Reseed = %v; want the hour kept", ttl)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		if _, err := Reseed(ctx, nil, "k", 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("Reseed(nil client) = %v; want ErrInvalid", err)
		}
		if _, err := Reseed(ctx, rdb, "", 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("Reseed(empty key) = %v; want ErrInvalid", err)
		}
	})
}

// TestRegressionAfterRestartWithoutPersistence restarts Redis without
// persistence under a running allocator: the counter starts from zero
// again, the allocator must refuse to issue (even from the blocks it holds
// once it knows), report a *RegressionError, and resume above every ID it
// issued once the key is reseeded.
func TestRegressionAfterRestartWithoutPersistence(t *testing.T) {
	tests := []struct {
		name    string
		recover func(ctx context.Context, a *Allocator, srv *redistest.Server, rerr *RegressionError) error
	}{
		{"Resume reseeds to HighWater", func(ctx context.Context, a *Allocator, _ *redistest.Server, _ *RegressionError) error {
			return a.Resume(ctx, 0)
		}},
		{"operator Reseed from the system of record, then Resume", func(ctx context.Context, a *Allocator, srv *redistest.Server, rerr *RegressionError) error {
			if _, err := Reseed(ctx, srv.Client(t), a.Key(), rerr.HighWater+1_000_000); err != nil {
				return err
			}
			return a.Resume(ctx, 0)
		}},
	}
	for _, tt := range tests {
		for _, unordered := range []bool{false, true} {
			name := tt.name
			if unordered {
				name += ", Unordered"
			}
			t.Run(name, func(t *testing.T) {
				testRegression(t, unordered, tt.recover)
			})
		}
	}
}

// testRegression is TestRegressionAfterRestartWithoutPersistence for one
// recovery; with unordered, the chunks the lanes hold must stop issuing
// with the block, so blocks are large enough for lanes to take chunks.
func testRegression(t *testing.T, unordered bool, recovery func(ctx context.Context, a *Allocator, srv *redistest.Server, rerr *RegressionError) error) {
	srv := redistest.Start(t, redistest.Options{}) // no persistence
	rdb := srv.Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "orders"
	size := int64(100)
	if unordered {
		size = lanedBlock()
	}
	a := newAllocator(t, rdb, key, Options{MinBlock: size, MaxBlock: size, Unordered: unordered})

	var issued []int64
	take := func(n int64) error {
		for i := int64(0); i < n; i++ {
			id, err := a.Next(ctx)
			if err != nil {
				return err
			}
			issued = append(issued, id)
		}
		return nil
	}
	// One more than whole chunks (the first ID comes from the block, the
	// first chunk of the third block starts at its start), so that a lane
	// holds the rest of one.
	if err := take(5*size/2 + 1); err != nil {
		t.Fatalf("Next before restart: %v", err)
	}
	quiesce(t, a) // the block (3×size, 4×size] is prefetched
	if held := heldByLanes(a); unordered && held == 0 {
		t.Fatalf("lanes hold no ID before the restart; want the rest of a chunk")
	}
	srv.Kill()
	srv.Restart()

	// The allocator holds (2×size, 3×size] and (3×size, 4×size]; fetching
	// the next one from the emptied Redis yields (0, size]. Take IDs until
	// that fetch starts, then wait for it, so that a lane still holds most
	// of the chunk it took when the fetch started.
	fetching := func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.inflight != nil || a.err != nil
	}
	for i := int64(0); i < 4*size && !fetching(); i++ {
		if err := take(1); err != nil {
			break
		}
	}
	redistest.WaitFor(t, "the regression", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.err != nil
	})
	if held := heldByLanes(a); held != 0 {
		t.Errorf("lanes hold %d IDs after the regression; want none", held)
	}
	_, err := a.Next(ctx)
	var rerr *RegressionError
	if !errors.Is(err, ErrRegression) || !errors.As(err, &rerr) {
		t.Fatalf("Next after restart error = %v; want a *RegressionError", err)
	}
	if rerr.End != size || rerr.Size != size || rerr.HighWater != 4*size || rerr.Key != key {
		t.Errorf("RegressionError = %+v; want End %d, Size %d, HighWater %d", rerr, size, size, 4*size)
	}
	maxIssued := slices.Max(issued)
	if maxIssued > rerr.HighWater {
		t.Fatalf("issued %d above HighWater %d", maxIssued, rerr.HighWater)
	}
	// Sticky: no more IDs, not even the rest of the block it holds.
	for i := 0; i < 3; i++ {
		if id, err := a.Next(ctx); !errors.Is(err, ErrRegression) {
			t.Fatalf("Next after regression = %d, %v; want ErrRegression again", id, err)
		}
	}
	if ids, err := a.NextN(ctx, 5); !errors.Is(err, ErrRegression) || len(ids) != 0 {
		t.Fatalf("NextN after regression = %v, %v; want none, ErrRegression", ids, err)
	}
	if st := a.Stats(); st.Regressions != 1 || st.Issued != int64(len(issued)) {
		t.Errorf("Stats() = %+v; want 1 regression, Issued %d", st, len(issued))
	}

	if err := recovery(ctx, a, srv, rerr); err != nil {
		t.Fatalf("recovery: %v", err)
	}
	before := len(issued)
	if err := take(1000); err != nil {
		t.Fatalf("Next after recovery: %v", err)
	}
	if first := issued[before]; first <= maxIssued {
		t.Errorf("first ID after recovery = %d; want above %d", first, maxIssued)
	}
	if unordered {
		assertUnique(t, issued)
	} else {
		assertUniqueIncreasing(t, issued)
	}
	t.Logf("issued %d IDs; regression at HighWater %d (max issued %d); resumed at %d",
		len(issued), rerr.HighWater, maxIssued, issued[before])
}

func assertUniqueIncreasing(t *testing.T, ids []int64) {
	t.Helper()
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ID %d at %d follows %d; want strictly increasing (so no duplicate)", ids[i], i, ids[i-1])
		}
	}
}

func TestResumeDiscardsFetchesFromBefore(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "gen"
	a := newAllocator(t, rdb, key, Options{MinBlock: 10, MaxBlock: 10})
	for i := 0; i < 5; i++ { // offset 5 triggers the prefetch of (10, 20]
		if _, err := a.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Resume(ctx, 1000); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	id, err := a.Next(ctx)
	if err != nil || id <= 1000 {
		t.Fatalf("Next after Resume(1000) = %d, %v; want above 1000", id, err)
	}
	if err := a.Resume(ctx, -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Resume(-1) = %v; want ErrInvalid", err)
	}
}
