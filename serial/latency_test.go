package serial_test

import (
	"math/bits"
	"time"
)

// latencies is a histogram of durations for benchmarks that time every call:
// exact below 64ns, then 32 buckets per power of two (3% wide), so that
// billions of samples take 15 KB. The zero value is empty. It is not safe for
// concurrent use: keep one per goroutine and merge them.
type latencies struct {
	counts [59 * 32]int64 // bucket(2^63-1) is 32×57+63
	n      int64
}

// add records d; a negative d counts as 0.
func (h *latencies) add(d time.Duration) {
	h.counts[bucket(uint64(max(d, 0)))]++
	h.n++
}

// merge adds o's samples to h.
func (h *latencies) merge(o *latencies) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the lower bound of the bucket holding the q-quantile,
// for q in [0, 1]; 0 when h is empty.
func (h *latencies) quantile(q float64) time.Duration {
	rank := int64(q * float64(h.n))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			return time.Duration(lowerBound(i))
		}
	}
	return 0
}

// bucket maps v to its bucket: v itself below 64, else 32 buckets for each
// power of two, indexed by the 5 bits after the leading one.
func bucket(v uint64) int {
	if v < 64 {
		return int(v)
	}
	e := bits.Len64(v) - 6 // v>>e is in [32, 64)
	return 32*e + int(v>>e)
}

// lowerBound is the smallest value in bucket i.
func lowerBound(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	e := i/32 - 1
	return uint64(i%32+32) << e
}
