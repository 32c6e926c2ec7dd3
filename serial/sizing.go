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
//	rate = used / elapsed        (IDs issued from the current block since it became current)
//	want = rate × TargetLifetime
//	next = clamp(want, size/2, 4·size) then clamp to [MinBlock, MaxBlock]
//
// used is the prefetch trigger offset for a background fetch, or the whole
// block when a caller had to wait. Growth is capped at ×4 per block so that
// one burst measured over a few microseconds cannot jump straight to
// MaxBlock (a huge block at a low rate would waste IDs for a long time);
// shrinking is capped at ×½ per block so that a short lull does not undo the
// size a busy allocator needs. From MinBlock 100 to MaxBlock 100,000 takes 5
// blocks; back down takes 10.

// growCap and shrinkCap bound how far one step moves the block size.
const (
	growCap   = 4
	shrinkCap = 2
)

// nextSize returns the size of the block to request after a block of size
// cur from which used IDs were issued in elapsed.
func nextSize(cur, used int64, elapsed, target time.Duration, minBlock, maxBlock int64) int64 {
	if cur <= 0 || used <= 0 {
		return clamp(cur, minBlock, maxBlock)
	}
	var want float64
	if elapsed <= 0 {
		want = float64(maxBlock) // faster than the clock can tell
	} else {
		want = float64(used) * float64(target) / float64(elapsed)
	}
	lo, hi := float64(cur)/shrinkCap, float64(cur)*growCap
	want = min(max(want, lo), hi, float64(maxBlock))
	return clamp(int64(want), minBlock, maxBlock)
}

func clamp(v, lo, hi int64) int64 {
	return min(max(v, lo), hi)
}

// triggerOffset is the 1-based offset in a block of size whose issuance
// starts the background fetch of the next block: the first offset after
// which at most threshold × size IDs remain.
func triggerOffset(size int64, threshold float64) int64 {
	if size <= 0 {
		return 0
	}
	remain := int64(threshold * float64(size))
	return clamp(size-remain, 1, size)
}
