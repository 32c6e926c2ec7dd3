package hll

import (
	"math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Sketch collects, from concurrent writers, the registers that rose since
// they were last taken (Take), so that only those travel to Redis. The
// zero value is an empty sketch. It is safe for concurrent use; Take and
// Restore are meant for one flushing goroutine at a time.
//
// A sketch starts sparse: a sorted slice of the registers pending, and
// the member that raised each to its rank, under a mutex. Take empties
// it, so a sketch that is not being added to costs next to nothing,
// however many members it saw, and what it takes can be sent as those
// members (one PFADD), which Redis applies much faster than a merge into
// a small HyperLogLog. It turns dense, 18 KiB that writers update with
// atomic operations and no lock, once more than maxSparse registers are
// pending or its mutex was contended promoteAfter times: many small
// sketches stay small, and a busy one stops serializing its writers. A
// dense sketch keeps every register, so a member seen before raises
// nothing and is not sent again, but it keeps no members: what it takes
// is registers, for a merge.
type Sketch struct {
	dense atomic.Pointer[denseSketch]
	dirty atomic.Bool // a register may have risen since the last Take

	mu        sync.Mutex
	sparse    []entry  // guarded by mu; sorted; unused once dense
	members   []string // guarded by mu; the members sparse entries index
	contended int      // guarded by mu
}

// entry is a register pending in a sparse sketch: its index, its rank and
// the index in Sketch.members of the member that raised it, packed so
// that the slice sorts by register, is searched in few cache lines, and
// moves without write barriers.
type entry uint32

const (
	entryReg  = 18 // the register's shift
	entryRank = 12 // the rank's shift
	entryIdx  = 1<<entryRank - 1
)

func newEntry(reg uint16, rank uint8, idx int) entry {
	return entry(reg)<<entryReg | entry(rank)<<entryRank | entry(idx)
}

func (e entry) reg() uint16    { return uint16(e >> entryReg) }
func (e entry) rank() uint8    { return uint8(e>>entryRank) & 63 }
func (e entry) index() int     { return int(e & entryIdx) }
func (e entry) update() Update { return Update{Reg: e.reg(), Rank: e.rank()} }

const (
	// maxSparse is the most registers a sparse sketch holds, 20 bytes
	// each and the members': as many members as one PFADD adds about as
	// fast as Redis merges a whole HyperLogLog. Below 1<<entryRank.
	maxSparse = 1024
	// promoteAfter is how many contended locks turn a sketch dense.
	promoteAfter = 8
)

// denseSketch holds every register, eight to a word, and a bit per
// register that is set when it rises and cleared when it is taken.
type denseSketch struct {
	regs  [NumRegisters / 8]atomic.Uint64
	risen [NumRegisters / 64]atomic.Uint64
}

// Add adds member. It does not allocate once the sketch is dense; while
// it is sparse, it keeps a copy of a member that raises a register until
// the register is taken.
func (s *Sketch) Add(member string) {
	if reg, rank := Pos(member); !s.addDense(reg, rank) {
		s.addSparse(reg, rank, member, nil)
	}
}

// AddBytes adds member, as Add does.
func (s *Sketch) AddBytes(member []byte) {
	if reg, rank := Pos(member); !s.addDense(reg, rank) {
		s.addSparse(reg, rank, "", member)
	}
}

// addDense raises reg to rank if the sketch is dense, and reports whether
// it is.
func (s *Sketch) addDense(reg uint16, rank uint8) bool {
	d := s.dense.Load()
	if d == nil {
		return false
	}
	if d.raise(reg, rank) {
		s.markDirty()
	}
	return true
}

// markDirty sets the dirty flag without writing to its cache line when it
// is already set, so that writers of a busy sketch only read it.
func (s *Sketch) markDirty() {
	if !s.dirty.Load() {
		s.dirty.Store(true)
	}
}

// addSparse adds the member str, or b if str is empty, at reg and rank.
func (s *Sketch) addSparse(reg uint16, rank uint8, str string, b []byte) {
	if !s.mu.TryLock() {
		s.mu.Lock()
		s.contended++
	}
	if s.dense.Load() != nil { // turned dense while we waited
		s.mu.Unlock()
		s.addDense(reg, rank)
		return
	}
	i, found := s.find(reg)
	if !found || s.sparse[i].rank() < rank {
		// A copy: the caller's string may share a large buffer, and the
		// caller's slice may be reused.
		member := string(b)
		if str != "" {
			member = strings.Clone(str)
		}
		s.set(i, found, Update{reg, rank, member})
		s.markDirty()
	}
	if len(s.sparse) > maxSparse || s.contended >= promoteAfter {
		s.promote()
	}
	s.mu.Unlock()
}

// find returns where reg is or belongs among the registers pending, and
// whether it is there. s.mu must be held.
func (s *Sketch) find(reg uint16) (int, bool) {
	i, _ := slices.BinarySearch(s.sparse, newEntry(reg, 0, 0))
	return i, i < len(s.sparse) && s.sparse[i].reg() == reg
}

// set stores u at i, found by find. s.mu must be held.
func (s *Sketch) set(i int, found bool, u Update) {
	if found {
		idx := s.sparse[i].index()
		s.members[idx] = u.Member
		s.sparse[i] = newEntry(u.Reg, u.Rank, idx)
		return
	}
	s.sparse = slices.Insert(s.sparse, i, newEntry(u.Reg, u.Rank, len(s.members)))
	s.members = append(s.members, u.Member)
}

// promote turns s dense, its registers pending still pending. s.mu must be
// held: no sparse writer is active.
func (s *Sketch) promote() {
	d := new(denseSketch)
	for _, e := range s.sparse {
		d.raise(e.reg(), e.rank())
	}
	s.sparse, s.members = nil, nil
	s.dense.Store(d)
}

func (d *denseSketch) rank(reg uint16) uint8 { return uint8(d.regs[reg/8].Load() >> (reg % 8 * 8)) }

func (d *denseSketch) markRisen(reg uint16) { d.risen[reg/64].Or(1 << (reg % 64)) }

// raise raises reg to rank and reports whether it rose.
func (d *denseSketch) raise(reg uint16, rank uint8) bool {
	w, shift := &d.regs[reg/8], reg%8*8
	for {
		old := w.Load()
		if uint8(old>>shift) >= rank {
			return false
		}
		if w.CompareAndSwap(old, old&^(0xff<<shift)|uint64(rank)<<shift) {
			// Marked after the rise, so that a Take that clears the mark
			// before reading the register finds the mark set again.
			d.markRisen(reg)
			return true
		}
	}
}

// Dirty reports whether a register may have risen since the last Take.
func (s *Sketch) Dirty() bool { return s.dirty.Load() }

// Take appends to dst the registers that rose since the last Take, at
// their current ranks, sorted by register, and returns it. withMembers
// reports whether each carries the member that raised it (the sketch was
// sparse); otherwise the registers are all there is. A register that
// rises during Take is either in the result or returned by the next Take.
func (s *Sketch) Take(dst []Update) (us []Update, withMembers bool) {
	if !s.dirty.Load() {
		return dst, false
	}
	// Cleared before the registers are read: an Add that rises after the
	// read sets it again.
	s.dirty.Store(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dense.Load(); d != nil {
		for i := range d.risen {
			if d.risen[i].Load() == 0 {
				continue
			}
			for w := d.risen[i].Swap(0); w != 0; w &= w - 1 {
				reg := uint16(i*64 + bits.TrailingZeros64(w))
				dst = append(dst, Update{Reg: reg, Rank: d.rank(reg)})
			}
		}
		return dst, false
	}
	for _, e := range s.sparse {
		u := e.update()
		u.Member = s.members[e.index()]
		dst = append(dst, u)
	}
	// Not kept for reuse: most sketches are small and idle most of the
	// time, and should cost nothing then.
	s.sparse, s.members = nil, nil
	return dst, true
}

// Restore gives back updates a Take returned that did not reach their
// destination: the next Take returns their registers again.
func (s *Sketch) Restore(us []Update) {
	if len(us) == 0 {
		return
	}
	s.mu.Lock()
	if d := s.dense.Load(); d != nil {
		for _, u := range us {
			if !d.raise(u.Reg, u.Rank) {
				d.markRisen(u.Reg)
			}
		}
	} else {
		// Only a sparse sketch's updates come back to a sparse sketch:
		// a dense one never turns sparse again.
		for _, u := range us {
			if i, found := s.find(u.Reg); !found || s.sparse[i].rank() < u.Rank {
				s.set(i, found, u)
			}
		}
		if len(s.sparse) > maxSparse {
			s.promote()
		}
	}
	s.mu.Unlock()
	s.markDirty()
}

// Pending returns how many registers rose since they were last taken.
func (s *Sketch) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dense.Load()
	if d == nil {
		return len(s.sparse)
	}
	n := 0
	for i := range d.risen {
		n += bits.OnesCount64(d.risen[i].Load())
	}
	return n
}

// MergePending merges the registers that rose since they were last taken
// into r.
func (s *Sketch) MergePending(r *Registers) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dense.Load()
	if d == nil {
		for _, e := range s.sparse {
			r.Set(e.reg(), e.rank())
		}
		return
	}
	for i := range d.risen {
		for w := d.risen[i].Load(); w != 0; w &= w - 1 {
			reg := uint16(i*64 + bits.TrailingZeros64(w))
			r.Set(reg, d.rank(reg))
		}
	}
}
