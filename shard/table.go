package shard

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/abacus-go/abacus/internal/stripe"
)

// tableShards is the number of independently locked insert domains.
const (
	tableShardBits = 6
	tableShards    = 1 << tableShardBits
)

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
	dirty      [dirtyLists]dirtyList
	hash       nameHash
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

// dirtyLists is how many dirty lists a table keeps. The first Add to a
// counter after a take pushes it on the list its goroutine hashes to, so
// goroutines doing that at the same time rarely contend on a list head.
const (
	dirtyListBits = 6
	dirtyLists    = 1 << dirtyListBits
)

// dirtyList is the head of a lock-free list of dirty counters (a Treiber
// stack; only Take pops, and it takes the whole list at once, so there is
// no ABA hazard), on a cache line of its own.
type dirtyList struct {
	head atomic.Pointer[Counter]
	_    [cacheLine - 8]byte
}

// slot holds a counter and its name's hash. The hash is stored before the
// counter is published, so a reader that sees the counter sees the hash.
// A deleted counter's slot holds tombstone.
type slot struct {
	hash    atomic.Uint64
	counter atomic.Pointer[Counter]
}

// NewTable returns an empty table whose counters grow up to maxStripes
// stripes under contention; maxStripes ≤ 0 means DefaultMaxStripes, 1
// keeps every counter a single cell, and other values are rounded up to a
// power of two.
func NewTable(maxStripes int) *Table {
	if maxStripes <= 0 {
		maxStripes = DefaultMaxStripes()
	}
	return &Table{maxStripes: stripe.Pow2(maxStripes), hash: newNameHash()}
}

// Len returns the number of counters in the table.
func (t *Table) Len() int { return int(t.size.Load()) }

// Lookup returns the counter named name, or nil if there is none. It takes
// no lock.
func (t *Table) Lookup(name string) *Counter { return t.get(name, false) }

// Get returns the counter named name, creating it if needed. For a name in
// the table it takes no lock.
func (t *Table) Get(name string) *Counter { return t.get(name, true) }

// get is Get and Lookup in one function, which they inline to a call of,
// with the probe inlined too: a lookup is on the path of every Add by
// name, and its steps (hash, slot, counter) depend on each other.
//
// A slot whose hash is stored but whose counter is not yet is an insert in
// progress: the name is not in the table yet.
func (t *Table) get(name string, create bool) *Counter {
	h := t.hash.sum(name)
	sh := t.shard(h)
	if p := sh.slots.Load(); p != nil {
		slots := *p
		mask := uint64(len(slots) - 1)
		for i := h & mask; ; i = (i + 1) & mask {
			s := &slots[i]
			c := s.counter.Load()
			if c == nil {
				break
			}
			if s.hash.Load() == h && c != tombstone && sameString(c.name, name) {
				return c
			}
		}
	}
	if !create {
		return nil
	}
	return t.insert(sh, h, name)
}

// sameString is a == b, skipping the byte comparison when both share
// their bytes, as a name passed again (a constant, a kept string) shares
// them with the counter's name.
func sameString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

// shard returns the shard of names hashing to h. The slot index comes from
// the low bits of h, so the shard takes the high ones.
func (t *Table) shard(h uint64) *tableShard {
	return &t.shards[h>>(64-tableShardBits)]
}

// tombstone marks a slot whose counter was deleted. It is never written.
var tombstone = new(Counter)

func (t *Table) insert(sh *tableShard, h uint64, name string) *Counter {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c := t.get(name, false); c != nil { // under mu: the array is current
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
// it are still taken, so nothing is lost, but Get returns a new counter
// for the name from now on. Delete suits counters that are done with, such
// as closed time windows.
func (t *Table) Delete(name string) bool {
	h := t.hash.sum(name)
	sh := t.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := t.get(name, false) // under mu: the array is current
	if c == nil {
		return false
	}
	slots := *sh.slots.Load()
	mask := uint64(len(slots) - 1)
	i := h & mask
	for slots[i].counter.Load() != c { // c is in this array: the walk ends
		i = (i + 1) & mask
	}
	slots[i].counter.Store(tombstone)
	sh.n--
	t.size.Add(-1)
	return true
}

// SweepIdle visits the next n of the table's 64 shards, round robin, and
// deletes the counters there that are idle: not pinned, with nothing
// added, in flight or waiting to be taken, and not taken since the
// previous visit of their shard. It returns how many it deleted. Calling
// it every d/64 evicts a counter idle for between d and 2d.
//
// Eviction never loses a delta: an Add that reaches a counter as it is
// deleted marks it dirty, and it is taken as usual (see Delete).
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

// push adds c to the calling goroutine's dirty list.
func (t *Table) push(c *Counter) {
	l := &t.dirty[stripe.Probe()*golden>>(64-dirtyListBits)]
	for {
		head := l.head.Load()
		c.next.Store(head)
		if l.head.CompareAndSwap(head, c) {
			return
		}
	}
}

// Take detaches the counters marked dirty since the last call, moves each
// one's delta out of its cells and in flight (see Counter), and calls fn
// with those whose delta is not zero. A counter added to while Take runs
// is marked again for the next call. Take must not run concurrently with
// itself.
//
// Every delta taken stays in flight, counted by Counter.Unflushed and
// keeping the counter from eviction, until the caller settles it (Settle:
// written) or restores it (Restore: not written), once.
func (t *Table) Take(fn func(c *Counter, n int64)) {
	for i := range t.dirty {
		for c := t.dirty[i].head.Swap(nil); c != nil; {
			next := c.next.Load()
			c.next.Store(nil)
			if n := c.take(); n != 0 {
				fn(c, n)
			}
			c = next
		}
	}
}

// Settle records that n, a delta Take handed out for c, was written: it is
// in flight no more.
func (t *Table) Settle(c *Counter, n int64) {
	t.own(c)
	c.inflight.Add(-n)
}

// Restore gives n, a delta Take handed out for c that was not written,
// back to c, to be taken again; it marks c dirty.
func (t *Table) Restore(c *Counter, n int64) {
	t.own(c)
	c.inflight.Add(-n)
	c.base.Add(n)
	c.markDirty()
}

// own panics unless c is one of t's counters: settling a counter of
// another table would corrupt both tables' accounts.
func (t *Table) own(c *Counter) {
	if c.table != t {
		panic("shard: Settle or Restore of a counter from another table")
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
