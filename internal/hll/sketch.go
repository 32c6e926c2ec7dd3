package hll

import (
	"cmp"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
)

// Sketch is a HyperLogLog filled by concurrent writers that remembers
// which registers rose since they were last taken (Take), so that only
// those need to travel. The zero value is an empty sketch. It is safe for
// concurrent use; Take and Restore are meant for one flushing goroutine.
//
// A sketch starts sparse: a sorted slice of its non-zero registers, under
// a mutex, 4 bytes a register. It turns dense, 18 KiB that writers update
// with atomic operations and no lock, once it holds more than maxSparse
// registers or its mutex has been contended promoteAfter times: many
// small sketches stay small, and a busy one stops serializing its writers.
type Sketch struct {
	dense atomic.Pointer[denseSketch]
	dirty atomic.Bool // a register may have risen since the last Take

	mu        sync.Mutex
	sparse    []entry // guarded by mu; sorted by register; nil once dense
	contended int     // guarded by mu
}

const (
	// maxSparse is the most registers a sparse sketch holds: 4 KiB, where
	// inserting into the sorted slice still costs less than a cache miss
	// or two.
	maxSparse = 1024
	// promoteAfter is how many contended locks turn a sketch dense.
	promoteAfter = 8
)

// entry is a register of a sparse sketch.
type entry struct {
	reg   uint16
	rank  uint8
	dirty bool // risen since the last Take
}

// denseSketch holds every register, eight to a word, and a bit per
// register that is set when it rises and cleared when it is taken.
type denseSketch struct {
	regs  [NumRegisters / 8]atomic.Uint64
	risen [NumRegisters / 64]atomic.Uint64
}

// Add raises register reg to rank (see Pos), if it is lower. It does not
// allocate once the sketch is dense, nor while it is sparse unless reg is
// new to it.
func (s *Sketch) Add(reg uint16, rank uint8) {
	reg &= NumRegisters - 1
	if d := s.dense.Load(); d != nil {
		if d.raise(reg, rank) {
			s.markDirty()
		}
		return
	}
	s.addSparse(reg, rank)
}

// markDirty sets the dirty flag without writing to its cache line when it
// is already set, so that writers of a busy sketch only read it.
func (s *Sketch) markDirty() {
	if !s.dirty.Load() {
		s.dirty.Store(true)
	}
}

func (s *Sketch) addSparse(reg uint16, rank uint8) {
	if !s.mu.TryLock() {
		s.mu.Lock()
		s.contended++
	}
	if d := s.dense.Load(); d != nil { // turned dense while we waited
		s.mu.Unlock()
		s.Add(reg, rank)
		return
	}
	if s.raiseSparse(reg, rank) {
		s.markDirty()
	}
	if len(s.sparse) > maxSparse || s.contended >= promoteAfter {
		s.promote()
	}
	s.mu.Unlock()
}

// raiseSparse raises reg to rank in the sparse slice, marking it dirty,
// and reports whether it rose. s.mu must be held.
func (s *Sketch) raiseSparse(reg uint16, rank uint8) bool {
	i, found := s.find(reg)
	switch {
	case !found:
		s.sparse = slices.Insert(s.sparse, i, entry{reg, rank, true})
		return true
	case s.sparse[i].rank < rank:
		s.sparse[i].rank, s.sparse[i].dirty = rank, true
		return true
	}
	return false
}

// find returns where reg is or belongs in the sparse slice, and whether
// it is there. s.mu must be held.
func (s *Sketch) find(reg uint16) (int, bool) {
	return slices.BinarySearchFunc(s.sparse, reg, func(e entry, reg uint16) int { return cmp.Compare(e.reg, reg) })
}

// promote turns s dense, keeping which registers are dirty. s.mu must be
// held: no sparse writer is active.
func (s *Sketch) promote() {
	d := new(denseSketch)
	for _, e := range s.sparse {
		d.regs[e.reg/8].Store(d.regs[e.reg/8].Load() | uint64(e.rank)<<(e.reg%8*8))
		if e.dirty {
			d.markRisen(e.reg)
		}
	}
	s.sparse = nil
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
// their current ranks, sorted by register, and returns it. A register
// that rises during Take is either in the result or returned by the next
// Take.
func (s *Sketch) Take(dst []Update) []Update {
	if !s.dirty.Load() {
		return dst
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
				dst = append(dst, Update{reg, d.rank(reg)})
			}
		}
		return dst
	}
	for i, e := range s.sparse {
		if e.dirty {
			dst = append(dst, Update{e.reg, e.rank})
			s.sparse[i].dirty = false
		}
	}
	return dst
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
			d.markRisen(u.Reg)
		}
	} else {
		for _, u := range us {
			if i, ok := s.find(u.Reg); ok {
				s.sparse[i].dirty = true
			}
		}
	}
	s.mu.Unlock()
	s.markDirty()
}

// Pending returns how many registers rose since they were last taken.
func (s *Sketch) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if d := s.dense.Load(); d != nil {
		for i := range d.risen {
			n += bits.OnesCount64(d.risen[i].Load())
		}
		return n
	}
	for _, e := range s.sparse {
		if e.dirty {
			n++
		}
	}
	return n
}

// MergeInto merges every register of s, taken or not, into r.
func (s *Sketch) MergeInto(r *Registers) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dense.Load(); d != nil {
		for i := range d.regs {
			w := d.regs[i].Load()
			for j := range 8 {
				r.Set(uint16(i*8+j), uint8(w>>(j*8)))
			}
		}
		return
	}
	for _, e := range s.sparse {
		r.Set(e.reg, e.rank)
	}
}
