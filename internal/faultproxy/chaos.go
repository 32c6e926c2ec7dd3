package faultproxy

import (
	"context"
	"math/rand/v2"
	"time"
)

// Durations of the timed faults Chaos injects.
const (
	// chaosStall is about twice a typical test client's read timeout
	// (100–150ms), so a stalled command times out, yet short enough that
	// a test makes progress between faults.
	chaosStall = 300 * time.Millisecond
	// chaosRefuse is how long Chaos refuses new connections.
	chaosRefuse = 200 * time.Millisecond
)

// Chaos injects one random fault after every random interval in
// [minEvery, maxEvery] until ctx is done, then returns, leaving no fault on
// (Refuse off) except replies still held by a stall and drops still armed.
// Each fault is one of: CutAll; DropNextReply; StallReplies for 300ms;
// Refuse for 200ms. rng picks intervals and faults, so a seed reproduces
// the sequence (though not its timing against the traffic); Chaos uses rng
// from the calling goroutine only, and the caller must not share it
// meanwhile. It panics if minEvery <= 0 or maxEvery < minEvery.
func (p *Proxy) Chaos(ctx context.Context, rng *rand.Rand, minEvery, maxEvery time.Duration) {
	if minEvery <= 0 || maxEvery < minEvery {
		panic("faultproxy: Chaos needs 0 < minEvery <= maxEvery")
	}
	defer p.Refuse(false)
	for {
		wait := minEvery + time.Duration(rng.Int64N(int64(maxEvery-minEvery)+1))
		if !sleep(ctx, wait) {
			return
		}
		switch rng.IntN(4) {
		case 0:
			p.CutAll()
		case 1:
			p.DropNextReply()
		case 2:
			p.StallReplies(chaosStall)
		case 3:
			p.Refuse(true)
			ok := sleep(ctx, chaosRefuse)
			p.Refuse(false)
			if !ok {
				return
			}
		}
	}
}

// sleep waits for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
