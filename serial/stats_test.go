package serial

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// incrCounter is a go-redis hook counting the INCRBY commands a client
// sends, alone or in pipelines: the allocator's Redis round trips.
type incrCounter struct{ n atomic.Int64 }

var _ redis.Hook = (*incrCounter)(nil)

func (h *incrCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *incrCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *incrCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

func (h *incrCounter) count(cmd redis.Cmder) {
	if cmd.Name() == "incrby" {
		h.n.Add(1)
	}
}

func TestStatsRoundTripsEqualBlocks(t *testing.T) {
	base := redistest.Client(t)
	rdb := redis.NewClient(base.Options())
	t.Cleanup(func() { rdb.Close() })
	hook := &incrCounter{}
	rdb.AddHook(hook)
	ctx := context.Background()

	tests := []struct {
		name       string
		size       int64
		issue      int
		wantBlocks int64
	}{
		// 10 blocks used up; the 10th reached its prefetch trigger (half
		// way), so an 11th is waiting.
		{"block 10, 100 IDs", 10, 100, 11},
		{"block 1000, 100,000 IDs", 1000, 100_000, 101},
		{"block 1000, 499 IDs (no prefetch yet)", 1000, 499, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook.n.Store(0)
			key := redistest.Prefix(t) + "rt"
			a := newAllocator(t, rdb, key, Options{MinBlock: tt.size, MaxBlock: tt.size})
			for i := 0; i < tt.issue; i++ {
				if _, err := a.Next(ctx); err != nil {
					t.Fatalf("Next: %v", err)
				}
			}
			quiesce(t, a)
			st := a.Stats()
			if st.Blocks != tt.wantBlocks || st.RoundTrips != tt.wantBlocks || hook.n.Load() != tt.wantBlocks {
				t.Errorf("Blocks = %d, RoundTrips = %d, INCRBYs sent = %d; want %d each",
					st.Blocks, st.RoundTrips, hook.n.Load(), tt.wantBlocks)
			}
			if st.Issued != int64(tt.issue) {
				t.Errorf("Issued = %d; want %d", st.Issued, tt.issue)
			}
			if v, _ := rdb.Get(ctx, key).Int64(); v != st.Blocks*tt.size || v != st.HighWater {
				t.Errorf("key = %d; want Blocks × size = %d = HighWater %d", v, st.Blocks*tt.size, st.HighWater)
			}
			// A tight loop outruns Redis, so how often it waited depends on
			// timing; only the bounds are invariant: the first Next waits,
			// and no more than once per block.
			if st.Waits < 1 || st.Waits > st.Blocks {
				t.Errorf("Waits = %d; want between 1 and Blocks %d", st.Waits, st.Blocks)
			}
			t.Logf("%+v", st)
		})
	}
}
