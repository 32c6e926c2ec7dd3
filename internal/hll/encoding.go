package hll

import "errors"

// ErrInvalid is returned for a string that is not a valid Redis
// HyperLogLog.
var ErrInvalid = errors.New("hll: not a valid Redis HyperLogLog")

const (
	headerLen = 16
	// DenseLen is the length of a dense Redis HyperLogLog: the header and
	// 16384 registers of 6 bits.
	DenseLen = headerLen + NumRegisters*6/8
	// SparseMaxLen is the longest sparse encoding Encode writes: Redis'
	// default hll-sparse-max-bytes, past which Redis itself turns a
	// HyperLogLog dense (merging into a long sparse one is slow).
	SparseMaxLen = 3000

	dense  = 0 // encoding byte of the dense form
	sparse = 1 // encoding byte of the sparse form

	maxSparseRank    = 32    // VAL holds ranks 1..32; a higher one needs the dense form
	maxValRun        = 4     // VAL covers 1..4 registers
	maxZeroRun       = 64    // ZERO covers 1..64 registers
	maxXZeroRun      = 16384 // XZERO covers 1..16384 registers
	opVal            = 0x80  // 1vvvvvxx
	opXZero          = 0x40  // 01xxxxxx yyyyyyyy
	staleCardinality = 0x80  // top bit of the cached cardinality's last byte
)

// Encode appends to dst a Redis HyperLogLog holding the registers us, which
// must be sorted by register, each register at most once, and returns it:
// the sparse encoding when it is at most SparseMaxLen bytes and every rank
// fits it, the dense one otherwise. Its cached cardinality is marked stale,
// so Redis computes it.
func Encode(dst []byte, us []Update) []byte {
	if n, ok := sparseLen(us); ok && headerLen+n <= SparseMaxLen {
		return appendSparse(dst, us)
	}
	return EncodeDense(dst, us)
}

func appendHeader(dst []byte, encoding byte) []byte {
	return append(dst, 'H', 'Y', 'L', 'L', encoding, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, staleCardinality)
}

// sparseLen returns the length of the sparse opcodes for us, and false if
// a rank is too high for them.
func sparseLen(us []Update) (n int, ok bool) {
	next := 0 // first register not yet covered
	for i := 0; i < len(us); {
		if us[i].Rank > maxSparseRank {
			return 0, false
		}
		n += zerosLen(int(us[i].Reg)-next) + 1
		run := valRun(us[i:])
		next = int(us[i].Reg) + run
		i += run
	}
	return n + zerosLen(NumRegisters-next), true
}

// valRun is how many registers from us[0] on one VAL opcode covers:
// consecutive registers of the same rank, at most maxValRun.
func valRun(us []Update) int {
	n := 1
	for n < min(len(us), maxValRun) && us[n].Reg == us[0].Reg+uint16(n) && us[n].Rank == us[0].Rank {
		n++
	}
	return n
}

// zerosLen is the length of the opcodes for n zero registers: ZERO up to
// maxZeroRun, XZERO beyond, as Redis writes them.
func zerosLen(n int) int {
	switch {
	case n == 0:
		return 0
	case n <= maxZeroRun:
		return 1
	default:
		return 2 * ((n + maxXZeroRun - 1) / maxXZeroRun)
	}
}

func appendZeros(dst []byte, n int) []byte {
	if n > 0 && n <= maxZeroRun {
		return append(dst, byte(n-1))
	}
	for ; n > 0; n -= maxXZeroRun {
		l := min(n, maxXZeroRun) - 1
		dst = append(dst, opXZero|byte(l>>8), byte(l))
	}
	return dst
}

func appendSparse(dst []byte, us []Update) []byte {
	dst = appendHeader(dst, sparse)
	next := 0
	for i := 0; i < len(us); {
		u := us[i]
		dst = appendZeros(dst, int(u.Reg)-next)
		run := valRun(us[i:])
		dst = append(dst, opVal|(u.Rank-1)<<2|byte(run-1))
		next = int(u.Reg) + run
		i += run
	}
	return appendZeros(dst, NumRegisters-next)
}

// EncodeDense appends to dst the dense Redis HyperLogLog holding the
// registers us (sorted, each register at most once), and returns it. A
// dense one merged into a sparse one makes that one dense too (PFMERGE),
// after which merges into it cost the same whatever its size.
func EncodeDense(dst []byte, us []Update) []byte {
	dst = appendHeader(dst, dense)
	start := len(dst)
	dst = append(dst, make([]byte, DenseLen-headerLen)...)
	p := dst[start:]
	for _, u := range us {
		// Register i takes bits 6i..6i+5, least significant first.
		bit := int(u.Reg) * 6
		v := uint16(u.Rank&63) << (bit & 7)
		p[bit/8] |= byte(v)
		if v > 0xff {
			p[bit/8+1] |= byte(v >> 8)
		}
	}
	return dst
}

// MergeEncoded merges the Redis HyperLogLog b, sparse or dense, into r. It
// returns ErrInvalid, leaving r unchanged, when b is not one (Redis would
// refuse it the same way).
func (r *Registers) MergeEncoded(b []byte) error {
	if len(b) < headerLen || string(b[:4]) != "HYLL" {
		return ErrInvalid
	}
	switch b[4] {
	case dense:
		if len(b) != DenseLen {
			return ErrInvalid
		}
		p := b[headerLen:]
		for j := 0; j < NumRegisters/4; j++ {
			b0, b1, b2 := p[3*j], p[3*j+1], p[3*j+2]
			r.Set(uint16(4*j), b0&63)
			r.Set(uint16(4*j+1), (b0>>6|b1<<2)&63)
			r.Set(uint16(4*j+2), (b1>>4|b2<<4)&63)
			r.Set(uint16(4*j+3), b2>>2)
		}
		return nil
	case sparse:
		ops := b[headerLen:]
		if !eachVal(ops, func(int, int, uint8) {}) {
			return ErrInvalid
		}
		eachVal(ops, func(first, n int, rank uint8) {
			for reg := first; reg < first+n; reg++ {
				r.Set(uint16(reg), rank)
			}
		})
		return nil
	}
	return ErrInvalid
}

// eachVal calls fn for every VAL opcode of the sparse opcodes ops with the
// registers it covers and their rank, and reports whether ops cover
// exactly the NumRegisters registers (if not, fn may have been called for
// some of them).
func eachVal(ops []byte, fn func(first, n int, rank uint8)) bool {
	reg := 0
	for i := 0; i < len(ops); i++ {
		op := ops[i]
		switch {
		case op&opVal != 0:
			n := int(op&3) + 1
			if reg+n > NumRegisters {
				return false
			}
			fn(reg, n, (op>>2)&31+1)
			reg += n
		case op&opXZero != 0:
			if i+1 == len(ops) {
				return false
			}
			reg += (int(op&63)<<8 | int(ops[i+1])) + 1
			i++
		default:
			reg += int(op) + 1
		}
	}
	return reg == NumRegisters
}

// Updates appends to dst the non-zero registers of r in order, and returns
// it.
func (r *Registers) Updates(dst []Update) []Update {
	for i, v := range r {
		if v != 0 {
			dst = append(dst, Update{Reg: uint16(i), Rank: v})
		}
	}
	return dst
}
