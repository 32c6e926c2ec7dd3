package hll

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

func member(i int) string { return fmt.Sprintf("member-%d", i) }

// TestSketchTakeSendsEverything has writers add members while a flusher
// takes what rose and "sends" it, failing every third time and restoring
// what it took: what was sent in the end must be every register of every
// member, whether the sketch stayed sparse or turned dense.
func TestSketchTakeSendsEverything(t *testing.T) {
	for _, n := range []int{200, 200_000} {
		t.Run(fmt.Sprint(n, " members"), func(t *testing.T) {
			var s Sketch
			var want, sent Registers
			for i := range n {
				want.Set(Pos(member(i)))
			}
			const writers = 8
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := w; i < n; i += writers {
						if i%2 == 0 {
							s.Add(member(i))
						} else {
							s.AddBytes([]byte(member(i)))
						}
						if i%64 == 0 {
							runtime.Gosched()
						}
					}
				})
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			var buf []Update
			for round := 0; ; round++ {
				finished := false
				select {
				case <-done:
					finished = true
				default:
				}
				var withMembers bool
				buf, withMembers = s.Take(buf[:0])
				if !slices.IsSortedFunc(buf, func(a, b Update) int { return int(a.Reg) - int(b.Reg) }) {
					t.Fatal("Take returned registers out of order")
				}
				for _, u := range buf {
					if reg, rank := Pos(u.Member); withMembers && (reg != u.Reg || rank != u.Rank) {
						t.Fatalf("Take returned %d at %d with member %q, which gives %d at %d", u.Reg, u.Rank, u.Member, reg, rank)
					}
				}
				if round%3 == 2 {
					s.Restore(buf)
					continue
				}
				for _, u := range buf {
					sent.Set(u.Reg, u.Rank)
				}
				if finished && !s.Dirty() {
					break
				}
			}
			if sent != want {
				t.Errorf("the registers sent differ from the members'")
			}
			var left Registers
			s.MergePending(&left)
			if p := s.Pending(); p != 0 || left != (Registers{}) {
				t.Errorf("after the last Take: Pending = %d, MergePending not empty; want nothing pending", p)
			}
		})
	}
}

// regsOf returns the registers of members [from, to).
func regsOf(from, to int) *Registers {
	var r Registers
	for i := from; i < to; i++ {
		r.Set(Pos(member(i)))
	}
	return &r
}

func fromUpdates(us []Update) *Registers {
	var r Registers
	for _, u := range us {
		r.Set(u.Reg, u.Rank)
	}
	return &r
}

func TestSketchTurnsDenseWhenLarge(t *testing.T) {
	var s Sketch
	n := 0
	for ; len(s.sparse) < maxSparse; n++ {
		s.Add(member(n))
	}
	if s.dense.Load() != nil {
		t.Fatalf("dense at %d registers; want sparse up to %d", maxSparse, maxSparse)
	}
	for ; s.dense.Load() == nil; n++ {
		s.Add(member(n))
	}
	if got := s.Pending(); got != maxSparse+1 {
		t.Errorf("Pending = %d; want %d", got, maxSparse+1)
	}
	us, withMembers := s.Take(nil)
	if withMembers || *fromUpdates(us) != *regsOf(0, n) {
		t.Fatalf("Take after turning dense: members %v, registers differ from the members'", withMembers)
	}
	s.Add(member(0)) // seen: nothing rises
	if got := s.Pending(); got != 0 {
		t.Errorf("Pending = %d after a member seen before; want 0", got)
	}
}

// TestSketchTurnsDenseWhenContended holds the sketch's lock while another
// goroutine adds, until the contended adds turn it dense.
func TestSketchTurnsDenseWhenContended(t *testing.T) {
	var s Sketch
	s.Add(member(1))
	deadline := time.Now().Add(10 * time.Second)
	for s.dense.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("still sparse after %d contended adds", s.contended)
		}
		s.mu.Lock()
		added := make(chan struct{})
		go func() { s.Add(member(2)); close(added) }()
		time.Sleep(time.Millisecond) // let it find the lock taken (or not: then we try again)
		s.mu.Unlock()
		<-added
	}
	if us, _ := s.Take(nil); *fromUpdates(us) != *regsOf(1, 3) {
		t.Errorf("Take = %v; want the registers of members 1 and 2", us)
	}
}

// TestSketchRestoreAcrossPromotion takes a register while sparse and
// restores it once the sketch is dense.
func TestSketchRestoreAcrossPromotion(t *testing.T) {
	var s Sketch
	s.Add(member(0))
	taken, _ := s.Take(nil)
	for i := range 2 * maxSparse {
		s.Add(member(i + 1))
	}
	s.Take(nil)
	s.Restore(taken)
	us, _ := s.Take(nil)
	if len(us) != 1 || us[0].Reg != taken[0].Reg || us[0].Rank < taken[0].Rank {
		t.Errorf("Take after Restore = %v; want %v (or its register higher)", us, taken)
	}
}

// TestSketchKeepsCopies checks that a member a sparse sketch keeps is its
// own copy.
func TestSketchKeepsCopies(t *testing.T) {
	var s Sketch
	b := []byte("visitor-1")
	s.AddBytes(b)
	copy(b, "XXXXXXX")
	us, withMembers := s.Take(nil)
	if !withMembers || len(us) != 1 || us[0].Member != "visitor-1" {
		t.Errorf("Take = %v, %v; want visitor-1's register and member", us, withMembers)
	}
}

func TestSketchAddDoesNotAllocate(t *testing.T) {
	var sparse, dense Sketch
	sparse.Add("a")
	members := make([]string, 100_000)
	for i := range members {
		members[i] = member(i)
		dense.Add(members[i])
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() { sparse.Add("a") }); n != 0 {
		t.Errorf("sparse Add of a member pending allocates %.1f times; want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { dense.Add(members[i%len(members)]); i++ }); n != 0 {
		t.Errorf("dense Add allocates %.1f times; want 0", n)
	}
}

// TestSketchPending checks what a sparse and a dense sketch hold as
// pending before and after a Take, and that only a dense one remembers
// the registers it handed out.
func TestSketchPending(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		resend bool // a member added again after Take is pending again
	}{{"sparse", 100, true}, {"dense", 10_000, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var s Sketch
			var want Registers
			for i := range tc.n {
				s.Add(member(i))
				want.Set(Pos(member(i)))
			}
			var got Registers
			s.MergePending(&got)
			if got != want || s.Pending() != len(want.Updates(nil)) {
				t.Fatalf("before Take: MergePending differs, Pending = %d; want %d", s.Pending(), len(want.Updates(nil)))
			}
			s.Take(nil)
			s.Add(member(0))
			if got := s.Pending(); (got == 1) != tc.resend {
				t.Errorf("member 0 again after Take: Pending = %d; want it pending again: %v", got, tc.resend)
			}
		})
	}
}
