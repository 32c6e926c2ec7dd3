package flush

import (
	"strings"
	"testing"
)

func TestSlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"123456789", 0x31C3 % 16384}, // the CRC-16/XMODEM check value
		{"foo", 12182},
		{"{user1000}.following", Slot("user1000")},
		{"foo{}{bar}", Slot("foo{}{bar}")}, // empty tag: whole key
		{"foo{{bar}}zap", Slot("{bar")},
	} {
		if got := Slot(tc.key); got != tc.want {
			t.Errorf("Slot(%q) = %d; want %d", tc.key, got, tc.want)
		}
	}
}

func TestSlotTagsCoverEverySlot(t *testing.T) {
	tags := slotTags()
	for sl, tag := range tags {
		if got := Slot("{" + tag + "}:w"); got != sl {
			t.Fatalf("tag %q for slot %d hashes to %d", tag, sl, got)
		}
	}
}

// TestKeyHasherMatchesSlotOfWholeKey hashes prefix+key both ways, with
// braces in every position of either part: the tag may be in the prefix,
// in the key, or opened in one and closed in the other.
func TestKeyHasherMatchesSlotOfWholeKey(t *testing.T) {
	parts := []string{"", "a", "ns:", "{", "}", "{}", "{t}", "x{y", "y}z", "{{", "}}", "a{b}c", "}{", "p{q}r{s}"}
	for _, prefix := range parts {
		h := newKeyHasher(prefix)
		for _, k1 := range parts {
			for _, k2 := range parts {
				key := k1 + "k" + k2
				if got, want := h.slot(key), wholeKeySlot(prefix+key); got != want {
					t.Errorf("slot of %q+%q = %d; want %d", prefix, key, got, want)
				}
			}
		}
	}
}

// wholeKeySlot is the hash slot of key by the rule of the Redis Cluster
// specification, computed bit by bit.
func wholeKeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % slots)
}
