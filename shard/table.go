package shard

import (
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// tableShards is the number of independently locked insert domains.
const tableShards = 64

// Table maps names to Counters and tracks which counters are dirty. The
// zero value is not usable; call NewTable. It is safe for concurrent use.
//
// Lookups of existing names take no lock: each shard publishes an
// open-addressing slot array through an atomic pointer; inserts take the
// shard's mutex and replace the array when it grows. A reader holding an
// old array still finds every name inserted before the swap, and a miss is
// re-checked under the lock, so no name is ever created twice while it is
// in the table. Delete leaves a tombstone that probes walk past; growing
// drops them.
type Table struct {
	shards     [tableShards]tableShard
	dirty      atomic.Pointer[Counter] // head of the lock-free dirty list
	size       atomic.Int64
	maxStripes int
	sweepMu    sync.Mutex
	sweepNext  int // guarded by sweepMu; the shard SweepIdle visits next
}

type tableShard struct {
	slots atomic.Pointer[[]slot]
	mu    sync.Mutex // serializes inserts into this shard
	n     int        // guarded by mu; live counters
	used  int        // guarded by mu; slots holding a counter or a tombstone
	_     [cacheLine - 8 - 8 - 8 - 8]byte
}

// slot holds a counter and its name's hash. The hash is stored before the
// counter is published, so a reader that sees the counter sees the hash.
// A deleted counter's slot holds tombstone.
type slot struct {
	hash    atomic.Uint64
	counter atomic.Pointer[Counter]
}

// NewTable returns an empty table whose counters grow up to maxStripes
// stripes under contention; maxStripes ≤ 0 means DefaultMaxStripes, and
// other values are rounded up to a power of two.
func NewTable(maxStripes int) *Table {
	if maxStripes <= 0 {
		maxStripes = DefaultMaxStripes()
	}
	return &Table{maxStripes: ceilPow2(maxStripes)}
}

// Len returns the number of counters in the table.
func (t *Table) Len() int { return int(t.size.Load()) }

// Lookup returns the counter named name, or nil if there is none. It takes
// no lock.
func (t *Table) Lookup(name string) *Counter {
	h := xxhash.Sum64String(name)
	return t.shards[h>>58].find(h, name)
}

// Get returns the counter named name, creating it if needed.
func (t *Table) Get(name string) *Counter {
	h := xxhash.Sum64String(name)
	sh := &t.shards[h>>58]
	if c := sh.find(h, name); c != nil {
		return c
	}
	return t.insert(sh, h, name)
}

// tombstone marks a slot whose counter was deleted. It is never written.
var tombstone = new(Counter)

func (sh *tableShard) find(h uint64, name string) *Counter {
	c, _, _ := sh.probe(h, name)
	return c
}

// probe looks name up in the current slot array and returns its counter,
// the array and the index, or a nil counter. The counter is the one the
// probe matched: reading the slot again could see a tombstone or, after a
// grow, another array.
func (sh *tableShard) probe(h uint64, name string) (*Counter, []slot, uint64) {
	p := sh.slots.Load()
	if p == nil {
		return nil, nil, 0
	}
	slots := *p
	mask := uint64(len(slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		c := slots[i].counter.Load()
		if c == nil {
			return nil, nil, 0
		}
		if c != tombstone && slots[i].hash.Load() == h && c.name == name {
			return c, slots, i
		}
	}
}

func (t *Table) insert(sh *tableShard, h uint64, name string) *Counter {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c := sh.find(h, name); c != nil {
		return c
	}
	p := sh.slots.Load()
	// Keep the load factor (tombstones included) at most 3/4 so probes
	// stay short and an empty slot always ends a search.
	if p == nil || (sh.used+1)*4 > len(*p)*3 {
		p = sh.grow(p)
	}
	c := &Counter{table: t, name: name}
	c.flags.Store(touched) // a new counter survives the next sweep
	put(*p, h, c)
	sh.n++
	sh.used++
	t.size.Add(1)
	return c
}

// Delete removes the counter named name from the table and reports whether
// it was there. The counter itself lives on for whoever holds it: Adds to
// it are still drained, so nothing is lost, but Get returns a new counter
// for the name from now on. Delete suits counters that are done with, such
// as closed time windows.
func (t *Table) Delete(name string) bool {
	h := xxhash.Sum64String(name)
	sh := &t.shards[h>>58]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c, slots, i := sh.probe(h, name) // under mu: the array is current
	if c == nil {
		return false
	}
	slots[i].counter.Store(tombstone)
	sh.n--
	t.size.Add(-1)
	return true
}

// SweepIdle visits the next n of the table's 64 shards, round robin, and
// deletes the counters there that are idle: not pinned, with nothing
// added, in flight or waiting to be drained, and not drained since the
// previous visit of their shard. It returns how many it deleted. Calling
// it every d/64 evicts a counter idle for between d and 2d.
//
// Eviction never loses a delta: an Add that reaches a counter as it is
// deleted marks it dirty, and it is drained as usual (see Delete).
func (t *Table) SweepIdle(n int) (evicted int) {
	t.sweepMu.Lock()
	defer t.sweepMu.Unlock()
	for range min(n, tableShards) {
		evicted += t.shards[t.sweepNext].sweep(t)
		t.sweepNext = (t.sweepNext + 1) % tableShards
	}
	return evicted
}

func (sh *tableShard) sweep(t *Table) (evicted int) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p := sh.slots.Load()
	if p == nil {
		return 0
	}
	slots := *p
	for i := range slots {
		c := slots[i].counter.Load()
		if c == nil || c == tombstone {
			continue
		}
		switch f := c.flags.Load(); {
		case f&pinned != 0:
		case f&touched != 0:
			c.flags.And(^uint32(touched))
		case !c.dirty.Load() && c.Unflushed() == 0:
			slots[i].counter.Store(tombstone)
			sh.n--
			t.size.Add(-1)
			evicted++
		}
	}
	return evicted
}

// grow publishes a slot array for the live counters of old (or a first
// one), twice the size unless tombstones made up much of old.
func (sh *tableShard) grow(old *[]slot) *[]slot {
	n := 16
	for n*3 < (sh.n+1)*4*2 {
		n *= 2
	}
	slots := make([]slot, n)
	if old != nil {
		for i := range *old {
			if c := (*old)[i].counter.Load(); c != nil && c != tombstone {
				put(slots, (*old)[i].hash.Load(), c)
			}
		}
	}
	sh.used = sh.n
	sh.slots.Store(&slots)
	return &slots
}

func put(slots []slot, h uint64, c *Counter) {
	mask := uint64(len(slots) - 1)
	i := h & mask
	for slots[i].counter.Load() != nil {
		i = (i + 1) & mask
	}
	slots[i].hash.Store(h)
	slots[i].counter.Store(c)
}

// push adds c to the dirty list (a Treiber stack; only Drain pops,
// and it takes the whole list at once, so there is no ABA hazard).
func (t *Table) push(c *Counter) {
	for {
		head := t.dirty.Load()
		c.next.Store(head)
		if t.dirty.CompareAndSwap(head, c) {
			return
		}
	}
}

// Drain detaches the counters marked dirty since the last call, drains
// each (moving its delta in flight, see Counter) and calls fn with those
// whose delta is not zero. A counter added to while Drain runs is marked
// again for the next call. Drain must not run concurrently with itself.
func (t *Table) Drain(fn func(c *Counter, delta int64)) {
	for c := t.dirty.Swap(nil); c != nil; {
		next := c.next.Load()
		c.next.Store(nil)
		if d := c.drain(); d != 0 {
			fn(c, d)
		}
		c = next
	}
}

// Range calls fn for every counter until fn returns false. Counters
// inserted during Range may or may not be visited.
func (t *Table) Range(fn func(*Counter) bool) {
	for i := range t.shards {
		p := t.shards[i].slots.Load()
		if p == nil {
			continue
		}
		for j := range *p {
			if c := (*p)[j].counter.Load(); c != nil && c != tombstone && !fn(c) {
				return
			}
		}
	}
}
