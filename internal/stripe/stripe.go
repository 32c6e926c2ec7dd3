// Package stripe picks a per-goroutine stripe without goroutine-local
// storage, for the striped structures of packages shard and serial.
package stripe

import "unsafe"

// Golden is 2^64 divided by the golden ratio. Multiplying by it is
// Fibonacci hashing: it spreads neighbouring inputs over the top bits.
const Golden = 0x9E3779B97F4A7C15

// Probe returns a per-goroutine value: the address of a local variable, in
// units of 2 KiB. Goroutine stacks are disjoint and at least 2 KiB apart,
// so distinct goroutines get distinct, stable values (until a stack grows
// and moves, which only reshuffles stripes). The address is only hashed,
// never dereferenced.
//
//go:nosplit
func Probe() uint64 {
	var x byte
	return uint64(uintptr(unsafe.Pointer(&x))) >> 11
}

// Pow2 is the smallest power of two at least n (1 for n ≤ 1): a stripe
// count that Index's mask can address.
func Pow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// Index hashes Probe with salt into [0, mask], mask being a power of two
// minus one. The salt goes in before the hash, so a new salt moves
// goroutines that collided apart (XORed after it, it would keep colliding
// pairs together); the top bits of the product are the well-mixed ones.
func Index(salt, mask uint64) uint64 {
	return ((Probe() ^ salt) * Golden >> 32) & mask
}
