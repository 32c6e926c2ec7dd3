package hll

import "math"

// Registers is a whole HyperLogLog, one byte per register (Redis' "raw"
// form). The zero value is the empty set. It is not safe for concurrent
// use.
type Registers [NumRegisters]uint8

// Update is a register at a rank and, when known, a member that gives
// it that rank: adding the member (PFADD) has the same effect as merging
// the register.
type Update struct {
	Reg    uint16
	Rank   uint8
	Member string
}

// Set raises register reg to rank, if it is lower.
func (r *Registers) Set(reg uint16, rank uint8) {
	if rank > r[reg] {
		r[reg] = rank
	}
}

// Merge makes r the union of r and o: the register-wise maximum.
func (r *Registers) Merge(o *Registers) {
	for i, v := range o {
		r[i] = max(r[i], v)
	}
}

// Estimate returns the cardinality estimate of r, exactly as PFCOUNT
// computes it (hllCount in Redis 5 and later).
func (r *Registers) Estimate() uint64 {
	var hist [64]int
	for _, v := range r {
		hist[v&63]++
	}
	return estimate(&hist)
}

// alphaInf is 0.5/ln 2, the bias correction of Ertl's estimator for an
// unbounded number of registers (HLL_ALPHA_INF).
const alphaInf = 0.721347520444481703680

// estimate is Redis' hllCount from a histogram of register values: Otmar
// Ertl's improved estimator ("New cardinality estimation algorithms for
// HyperLogLog sketches", arXiv:1702.01284). Every operation is the C
// code's, in its order, in float64: the result must equal PFCOUNT's to
// the unit. The float64 conversions of products keep the compiler from
// fusing them into FMA instructions, whose single rounding would differ.
func estimate(hist *[64]int) uint64 {
	const (
		m = float64(NumRegisters)
		q = 64 - P
	)
	z := m * tau((m-float64(hist[q+1]))/m)
	for j := q; j >= 1; j-- {
		z += float64(hist[j])
		z *= 0.5
	}
	z += float64(m * sigma(float64(hist[0])/m))
	// llroundl rounds half away from zero, as math.Round does.
	return uint64(math.Round(alphaInf * m * m / z))
}

// sigma is hllSigma: x + Σ x^(2^k)·2^(k-1), +Inf at 1 (every register 0,
// which makes the estimate 0).
func sigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += float64(x * y)
		y += y
		if z == prev {
			return z
		}
	}
}

// tau is hllTau; it is 0 unless some register holds MaxRank.
func tau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		d := 1 - x
		z -= float64(float64(d*d) * y)
		if z == prev {
			return z / 3
		}
	}
}
