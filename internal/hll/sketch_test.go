package hll

import (
	"fmt"
	"math/rand/v2"
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
						s.Add(Pos(member(i)))
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
				buf = s.Take(buf[:0])
				if !slices.IsSortedFunc(buf, func(a, b Update) int { return int(a.Reg) - int(b.Reg) }) {
					t.Fatal("Take returned registers out of order")
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
			var all Registers
			s.MergeInto(&all)
			if all != want {
				t.Errorf("MergeInto differs from the members' registers")
			}
			if p := s.Pending(); p != 0 {
				t.Errorf("Pending = %d after the last Take; want 0", p)
			}
		})
	}
}

func TestSketchTurnsDenseWhenLarge(t *testing.T) {
	var s Sketch
	for reg := range uint16(maxSparse) {
		s.Add(reg, 1)
	}
	if s.dense.Load() != nil {
		t.Fatalf("dense at %d registers; want sparse up to %d", maxSparse, maxSparse)
	}
	s.Add(maxSparse, 2)
	if s.dense.Load() == nil {
		t.Fatalf("sparse at %d registers", maxSparse+1)
	}
	if got := s.Pending(); got != maxSparse+1 {
		t.Errorf("Pending = %d; want %d", got, maxSparse+1)
	}
	us := s.Take(nil)
	if len(us) != maxSparse+1 || us[maxSparse] != (Update{maxSparse, 2}) {
		t.Fatalf("Take after turning dense: %d registers, last %v", len(us), us[len(us)-1])
	}
	s.Add(5, 1) // not higher: nothing rises
	s.Add(7, 3)
	if got := s.Take(nil); !slices.Equal(got, []Update{{7, 3}}) {
		t.Errorf("Take = %v; want [{7 3}]", got)
	}
}

// TestSketchTurnsDenseWhenContended holds the sketch's lock while another
// goroutine adds, until the contended adds turn it dense.
func TestSketchTurnsDenseWhenContended(t *testing.T) {
	var s Sketch
	s.Add(1, 1)
	deadline := time.Now().Add(10 * time.Second)
	for s.dense.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("still sparse after %d contended adds", s.contended)
		}
		s.mu.Lock()
		added := make(chan struct{})
		go func() { s.Add(2, 2); close(added) }()
		time.Sleep(time.Millisecond) // let it find the lock taken (or not: then we try again)
		s.mu.Unlock()
		<-added
	}
	if got := s.Take(nil); !slices.Equal(got, []Update{{1, 1}, {2, 2}}) {
		t.Errorf("Take = %v; want [{1 1} {2 2}]", got)
	}
}

// TestSketchRestoreAcrossPromotion takes registers while sparse and
// restores them once the sketch is dense.
func TestSketchRestoreAcrossPromotion(t *testing.T) {
	var s Sketch
	s.Add(9, 4)
	taken := s.Take(nil)
	for reg := range uint16(2 * maxSparse) {
		s.Add(reg+100, 1)
	}
	s.Take(nil)
	s.Restore(taken)
	if got := s.Take(nil); !slices.Equal(got, []Update{{9, 4}}) {
		t.Errorf("Take after Restore = %v; want [{9 4}]", got)
	}
}

func TestSketchAddDoesNotAllocate(t *testing.T) {
	var sparse, dense Sketch
	sparse.Add(3, 1)
	for reg := range uint16(2 * maxSparse) {
		dense.Add(reg, 1)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	if n := testing.AllocsPerRun(1000, func() { sparse.Add(3, uint8(1+rng.IntN(MaxRank))) }); n != 0 {
		t.Errorf("sparse Add of a known register allocates %.1f times; want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { dense.Add(uint16(rng.IntN(NumRegisters)), uint8(1+rng.IntN(MaxRank))) }); n != 0 {
		t.Errorf("dense Add allocates %.1f times; want 0", n)
	}
}
