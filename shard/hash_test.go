package shard

import (
	"fmt"
	"strings"
	"testing"
)

// TestNameHashTellsNamesApart hashes names of every length from 0 to 40
// (both sides of the 16-byte switch to hash/maphash), including names
// that differ in one byte only and names that are prefixes of each other:
// no two share a 64-bit hash, and a name hashes the same every time.
func TestNameHashTellsNamesApart(t *testing.T) {
	h := newNameHash()
	seen := map[uint64]string{}
	add := func(name string) {
		sum := h.sum(name)
		if other, ok := seen[sum]; ok && other != name {
			t.Fatalf("%q and %q share hash %#x", name, other, sum)
		}
		seen[sum] = name
		if again := h.sum(string([]byte(name))); again != sum {
			t.Fatalf("hash(%q) = %#x, then %#x", name, sum, again)
		}
	}
	for n := 0; n <= 40; n++ {
		base := strings.Repeat("a", n)
		add(base)
		for i := range n {
			for _, c := range []byte{'b', 0, 0xff} {
				b := []byte(base)
				b[i] = c
				add(string(b))
			}
		}
	}
	for i := range 100_000 {
		add(fmt.Sprint("pv:/page/", i))
		add(fmt.Sprint("user:", i, ":views"))
	}
}

// TestNameHashSpreadsNames: names that differ only in a few digits spread
// evenly over the table's shards (the high bits) and over a shard's slots
// (the low bits).
func TestNameHashSpreadsNames(t *testing.T) {
	const names, buckets = 64 * 1024, 64
	for _, format := range []string{"pv:/page/%05d", "%d", "k%04d", "counter:%08d:total"} {
		h := newNameHash()
		var high, low [buckets]int
		for i := range names {
			sum := h.sum(fmt.Sprintf(format, i))
			high[sum>>(64-6)]++
			low[sum%buckets]++
		}
		for b := range buckets {
			if n := high[b]; n < names/buckets*3/4 || n > names/buckets*5/4 {
				t.Errorf("%q: high bits %d hold %d of %d names; want about %d", format, b, n, names, names/buckets)
			}
			if n := low[b]; n < names/buckets*3/4 || n > names/buckets*5/4 {
				t.Errorf("%q: low bits %d hold %d of %d names; want about %d", format, b, n, names, names/buckets)
			}
		}
	}
}

// TestNameHashIsSeeded: two tables hash a name differently, so names that
// collide in one process do not in the next.
func TestNameHashIsSeeded(t *testing.T) {
	a, b := newNameHash(), newNameHash()
	for _, name := range []string{"", "k", "pv:/home", "a name longer than sixteen bytes"} {
		if a.sum(name) == b.sum(name) {
			t.Errorf("two seeds hash %q alike", name)
		}
	}
}
