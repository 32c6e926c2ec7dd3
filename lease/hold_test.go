package lease

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
)

// TestHoldRunsOneHolderAtATimeAndHandsOver runs Hold in two contenders:
// fn never runs in both at once, and when the holder's context ends the
// other takes over without waiting out the TTL (Hold releases).
func TestHoldRunsOneHolderAtATimeAndHandsOver(t *testing.T) {
	rdb := redistest.Client(t)
	opts := Options{KeyPrefix: redistest.Prefix(t), AutoRenew: true, MaxRetryDelay: 10 * time.Millisecond}
	var inside, overlaps atomic.Int32
	var mu sync.Mutex
	var holders []int
	run := func(ctx context.Context, id int) {
		Hold(ctx, rdb, "job", time.Minute, opts, func(ctx context.Context, l *Lease) {
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			mu.Lock()
			holders = append(holders, id)
			mu.Unlock()
			<-ctx.Done()
			inside.Add(-1)
		}, func(err error) { t.Errorf("contender %d: %v", id, err) })
	}
	ctx1, stop1 := context.WithCancel(context.Background())
	ctx2, stop2 := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { run(ctx1, 1); done <- struct{}{} }()
	waitHeld := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			got := len(holders)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d holds; want %d", got, n)
			}
		}
	}
	waitHeld(1)
	go func() { run(ctx2, 2); done <- struct{}{} }()
	stop1() // the 1-minute TTL would keep contender 2 out: only a release lets it in
	<-done
	waitHeld(2)
	stop2()
	<-done
	if overlaps.Load() != 0 {
		t.Fatalf("fn ran in both contenders at once %d times", overlaps.Load())
	}
	if holders[0] != 1 || holders[1] != 2 {
		t.Fatalf("holders %v; want [1 2]", holders)
	}
}
