// Package hll is a HyperLogLog that is register-for-register and
// byte-for-byte compatible with Redis' own (PFADD, PFMERGE, PFCOUNT), so
// that members sketched in a process and merged into Redis give exactly
// the registers, and the count, that PFADD of the same members would.
//
// It follows Redis' hyperloglog.c: 16384 registers of 6 bits; a member's
// register is the low 14 bits of its MurmurHash64A (seed 0xadc83b19) and
// its rank is one more than the number of trailing zeros of the other 50
// bits, at most 51 (Pos). A Redis HyperLogLog is a string with a 16-byte
// header ("HYLL", the encoding byte, three unused bytes, an 8-byte cached
// cardinality whose top bit marks it stale) followed by either the dense
// registers, 6 bits each, or the sparse run-length opcodes ZERO, XZERO
// and VAL. Encode writes either, whichever is shorter; Registers reads
// both and estimates the cardinality with Redis' estimator (Ertl's, as in
// Redis 5 and later), so a count computed here equals PFCOUNT's.
//
// Sketch collects members from concurrent writers and hands out the
// registers that rose since they were last taken, so that only those
// travel to Redis, with the members that raised them while the sketch is
// small (adding those members with PFADD is the same as merging the
// registers). A HyperLogLog merge is a register-wise maximum, so sending
// a register twice, or late, is harmless.
//
// The package knows nothing of Redis clients; package engine sends what
// it encodes.
package hll
