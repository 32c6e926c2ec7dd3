package hll

import "math/bits"

const (
	// P is the number of hash bits that select a register.
	P = 14
	// NumRegisters is the number of registers: 16384.
	NumRegisters = 1 << P
	// MaxRank is the highest rank a member can give its register: the 50
	// hash bits above the register index, plus one.
	MaxRank = 64 - P + 1
)

// seed is the seed Redis hashes members with (hllPatLen in hyperloglog.c).
const seed = 0xadc83b19

// Pos returns the register Redis assigns member to and the rank member
// gives it: the register index is the low P bits of the member's hash, the
// rank the position of the lowest set bit among the others (1 for a set
// bit right above the index), at most MaxRank.
func Pos[T string | []byte](member T) (reg uint16, rank uint8) {
	h := murmur64A(member)
	// The bit above the 50 rank bits bounds the count when they are all 0.
	return uint16(h & (NumRegisters - 1)), uint8(bits.TrailingZeros64(h>>P|1<<(64-P))) + 1
}

// murmur64A is MurmurHash64A as Redis has it, which reads the input as
// little-endian 64-bit words on every platform.
func murmur64A[T string | []byte](data T) uint64 {
	const (
		m = 0xc6a4a7935bd1e995
		r = 47
	)
	h := seed ^ uint64(len(data))*m
	for ; len(data) >= 8; data = data[8:] {
		_ = data[7] // one bounds check for the word
		k := uint64(data[0]) | uint64(data[1])<<8 | uint64(data[2])<<16 | uint64(data[3])<<24 |
			uint64(data[4])<<32 | uint64(data[5])<<40 | uint64(data[6])<<48 | uint64(data[7])<<56
		k *= m
		k ^= k >> r
		k *= m
		h ^= k
		h *= m
	}
	if len(data) > 0 {
		// The tail bytes, little-endian, as the C switch falls through them.
		var k uint64
		for i := len(data) - 1; i >= 0; i-- {
			k = k<<8 | uint64(data[i])
		}
		h ^= k
		h *= m
	}
	h ^= h >> r
	h *= m
	h ^= h >> r
	return h
}
