package flush

import (
	"strconv"
	"strings"
	"sync"
)

// slots is the number of Redis Cluster hash slots.
const slots = 16384

// Slot returns the Redis Cluster hash slot of key, honouring {hash tags}.
func Slot(key string) int {
	h := newKeyHasher("")
	return h.slot(key)
}

// keyHasher computes the hash slots of keys that share a prefix, as Redis
// would for prefix+key, without building that string: a flush hashes
// every dirty key, and a key's prefix (the engine's namespace) is the same
// for all of them.
type keyHasher struct {
	tag   tagPlace
	crc   uint16 // crc16(prefix): a key hashed whole continues from it
	open  string // tagOpen: the part of the prefix after its first '{'
	fixed int    // tagInPrefix: the slot of every key
}

// tagPlace says where the prefix leaves a key's hash tag. Redis looks for
// a tag only between the key's first '{' and the first '}' after it.
type tagPlace int

const (
	tagInKey    tagPlace = iota // no '{' in the prefix
	tagInPrefix                 // a whole tag in the prefix
	tagOpen                     // the prefix opens a tag; the key's first '}' closes it
	tagNone                     // the prefix holds "{}": every key is hashed whole
)

func newKeyHasher(prefix string) keyHasher {
	h := keyHasher{crc: crc16Update(0, prefix)}
	if i := strings.IndexByte(prefix, '{'); i >= 0 {
		rest := prefix[i+1:]
		switch j := strings.IndexByte(rest, '}'); {
		case j > 0:
			h.tag, h.fixed = tagInPrefix, int(crc16Update(0, rest[:j])%slots)
		case j == 0:
			h.tag = tagNone
		default:
			h.tag, h.open = tagOpen, rest
		}
	}
	return h
}

// slot returns the hash slot of prefix+key.
func (h *keyHasher) slot(key string) int {
	switch h.tag {
	case tagInPrefix:
		return h.fixed
	case tagOpen:
		if j := strings.IndexByte(key, '}'); j >= 0 && len(h.open)+j > 0 {
			return int(crc16Update(crc16Update(0, h.open), key[:j]) % slots)
		}
	case tagInKey:
		if i := strings.IndexByte(key, '{'); i >= 0 {
			if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
				return int(crc16Update(0, key[i+1:i+1+j]) % slots)
			}
		}
	}
	return int(crc16Update(h.crc, key) % slots)
}

// crc16Update continues CRC-16/XMODEM, the checksum Redis Cluster hashes
// keys with, from crc over s: crc16Update(crc16Update(0, a), b) is the
// checksum of a+b.
func crc16Update(crc uint16, s string) uint16 {
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^s[i]]
	}
	return crc
}

// crc16Table holds CRC-16/XMODEM (polynomial 0x1021) of every byte value.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// SlotTag returns a short string that hashes to slot s (in [0, 16384)),
// so that a key starting with "{"+SlotTag(s)+"}" lives in slot s on a
// Redis Cluster whatever follows: to put a key in the slot of another.
func SlotTag(s int) string { return slotTags()[s] }

// slotTags maps every slot to a short string that hashes to it, so a writer
// record can be placed in a chosen slot with "{tag}". It is computed once,
// in a few milliseconds, and never changes.
var slotTags = sync.OnceValue(func() *[slots]string {
	var tags [slots]string
	for n, found := 0, 0; found < slots; n++ {
		s := strconv.FormatUint(uint64(n), 36)
		if sl := crc16Update(0, s) % slots; tags[sl] == "" {
			tags[sl] = s
			found++
		}
	}
	return &tags
})
