package serial

import "time"

// Block sizing.
//
// Leaf's segment mode doubles the step when a segment lasted under half the
// target (15 min) and halves it when it lasted over twice that. Doubling
// needs log2(max/min) blocks to catch up with a rate jump, and callers wait
// at every boundary meanwhile. Here the size is computed from the measured
// rate instead, at the moment the next block is requested:
//
//	rate = used / elapsed        (IDs issued since the rate was last measured)
//	want = max(rate × TargetLifetime, 2 × cover)    (cover: see below)
//	next = clamp(want, size/2, 4·size) then clamp to [MinBlock, MaxBlock]
//
// The rate is measured when a block reaches its prefetch trigger, or runs
// out with no fetch in flight, over the IDs issued since the previous
// measure (since the first block became current, for the first): about a
// block's worth wherever the trigger sits in the block, so a trigger moved
// to the first ID (see below) still measures a whole block. Growth is
// capped at ×4 per block so that one burst measured over a few
// microseconds cannot jump straight to MaxBlock (a huge block at a low rate
// would waste IDs for a long time); shrinking is capped at ×½ per block so
// that a short lull does not undo the size a busy allocator needs. From
// MinBlock 100 to 100,000 takes 5 blocks; back down takes 10. The default
// MaxBlock, 10^9, lets a block last the default 10s up to 100M IDs/s;
// below such rates the size follows the rate, not the cap.

// growCap and shrinkCap bound how far one step moves the block size.
const (
	growCap   = 4
	shrinkCap = 2
)

// nextSize returns the size of the block to request after a block of size
// cur, used IDs having been issued in elapsed, and the fetch time asking for
// at least floor (2 × cover; see below).
func nextSize(cur, used int64, elapsed, target time.Duration, floor, minBlock, maxBlock int64) int64 {
	if cur <= 0 || used <= 0 {
		return clamp(cur, minBlock, maxBlock)
	}
	var want float64
	if elapsed <= 0 {
		want = float64(maxBlock) // faster than the clock can tell
	} else {
		want = float64(used) * float64(target) / float64(elapsed)
	}
	want = max(want, float64(floor))
	lo, hi := float64(cur)/shrinkCap, float64(cur)*growCap
	want = min(max(want, lo), hi, float64(maxBlock))
	return clamp(int64(want), minBlock, maxBlock)
}

func clamp(v, lo, hi int64) int64 {
	return min(max(v, lo), hi)
}

// Covering the fetch time.
//
// A background fetch takes a round trip, and far longer when the CPU is
// saturated: the goroutine that fetches is readied by the network poller
// when Redis answers and then queues for a P behind every runnable
// goroutine, up to a time slice (10ms) for each. With 64 CPU-bound callers
// on 2 Ps that is hundreds of milliseconds per round trip, during which the
// callers go on issuing IDs. So the allocator keeps lag, the longest recent
// fetch time, from request to block in hand (it decays by 1/lagDecay per
// fetch), and
//
//	cover   = lagHeadroom × rate × lag     IDs in hand when a fetch starts, at least
//	trigger = size − max(threshold × size, cover)
//	want   ≥ 2 × cover                     so that a block lasts through the
//	                                       fetch of the next, and the trigger
//	                                       comes no earlier than half way
//
// The trigger moves at once; the block grows within the same ×4 per block
// as for the rate, so that a burst timed over microseconds does not lease a
// huge block either way. While a block cannot hold the cover (right after
// the lag jumped, or at MaxBlock), its trigger is its first ID: the fetch
// starts as early as it can. Holding a chain of blocks ahead instead (as
// CosId's SegmentChainId does) would not keep up either: fetches are one
// at a time, so blocks smaller than the IDs issued during a fetch run out
// faster than they arrive, however many are queued. The lag is kept as a
// time rather than as the IDs issued during a fetch so that when the rate
// falls, cover falls with it at once.

// lagHeadroom is how many times the lag's worth of IDs a fetch starts with
// in hand. A fetch may well be slower than any recent one: twice, when it
// makes the INFO round trip of auto mode (at most every second, so not
// between fetches close together), and more when other processes take the
// CPU too.
const lagHeadroom = 4

// lagDecay is the share (1/lagDecay) by which the lag decays per fetch, so
// that a stall long past stops inflating blocks.
const lagDecay = 8

// nextLag returns the lag after a fetch that took took.
func nextLag(lag, took time.Duration) time.Duration {
	return max(took, lag-lag/lagDecay)
}

// cover is how many IDs should be in hand when a fetch starts, at rate IDs/s
// and with fetches taking up to lag.
func cover(rate float64, lag time.Duration) int64 {
	return int64(lagHeadroom * rate * lag.Seconds())
}

// triggerOffset is the 1-based offset in a block of size whose issuance
// starts the background fetch of the next block: the first offset after
// which at most max(threshold × size, cover) IDs remain.
func triggerOffset(size int64, threshold float64, cover int64) int64 {
	if size <= 0 {
		return 0
	}
	remain := max(int64(threshold*float64(size)), cover)
	return clamp(size-remain, 1, size)
}
