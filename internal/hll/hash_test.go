package hll

import "testing"

// The registers and ranks Redis 7.0 gives these members: PFADD of each
// alone into an empty key, read back with PFDEBUG GETREG. They cover every
// tail length of MurmurHash64A's input (0 to 7 bytes after the 8-byte
// words). TestPosMatchesPFADD checks many more against a live server.
var redisPos = []struct {
	member string
	reg    uint16
	rank   uint8
}{
	{"", 5938, 2},
	{"a", 12711, 2},
	{"abcdefg", 5634, 2},
	{"abcdefgh", 1383, 1},
	{"abcdefghi", 6903, 1},
	{"user:1234567890", 5703, 6},
	{"0123456789abcdef", 5949, 1},
	{"0123456789abcdefg", 14057, 2},
	{"visitor-42", 13437, 1},
}

func TestPos(t *testing.T) {
	for _, tc := range redisPos {
		if reg, rank := Pos(tc.member); reg != tc.reg || rank != tc.rank {
			t.Errorf("Pos(%q) = %d, %d; want %d, %d", tc.member, reg, rank, tc.reg, tc.rank)
		}
		if reg, rank := Pos([]byte(tc.member)); reg != tc.reg || rank != tc.rank {
			t.Errorf("Pos([]byte(%q)) = %d, %d; want %d, %d", tc.member, reg, rank, tc.reg, tc.rank)
		}
	}
}

func TestPosDoesNotAllocate(t *testing.T) {
	s, b := "visitor-1234567890", []byte("visitor-1234567890")
	if n := testing.AllocsPerRun(100, func() { Pos(s); Pos(b) }); n != 0 {
		t.Errorf("Pos allocates %.1f times per call; want 0", n)
	}
}
