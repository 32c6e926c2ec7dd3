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
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % slots)
}

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slotTags maps every slot to a short string that hashes to it, so a writer
// record can be placed in the slot of the keys it guards with "{tag}". It
// is computed once and never changes.
var slotTags = sync.OnceValue(func() *[slots]string {
	var tags [slots]string
	for n, found := 0, 0; found < slots; n++ {
		s := strconv.FormatUint(uint64(n), 36)
		if sl := crc16(s) % slots; tags[sl] == "" {
			tags[sl] = s
			found++
		}
	}
	return &tags
})
