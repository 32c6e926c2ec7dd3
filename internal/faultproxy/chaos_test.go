package faultproxy

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
)

func TestChaosInjectsEveryFaultAndLosesNoAckedWrite(t *testing.T) {
	p, direct := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.Chaos(ctx, rand.New(rand.NewPCG(1, 2)), 10*time.Millisecond, 40*time.Millisecond)
	}()

	faults := func(st Stats) int { return st.CutAlls + st.DropsArmed + st.Stalls + st.Refuses }
	c := dial(t, p, 100*time.Millisecond)
	var attempts, acked int64
	deadline := time.Now().Add(eventuallyWithin)
	for faults(p.Stats()) < 16 {
		if time.Now().After(deadline) {
			t.Fatalf("Chaos injected %d faults in %v; want 16", faults(p.Stats()), eventuallyWithin)
		}
		attempts++
		if c.Incr(context.Background(), "n").Err() == nil {
			acked++
		}
	}
	cancel()
	wg.Wait()

	st := p.Stats()
	for _, k := range []struct {
		name string
		n    int
	}{
		{"CutAlls", st.CutAlls},
		{"DropsArmed", st.DropsArmed},
		{"Stalls", st.Stalls},
		{"Refuses", st.Refuses},
	} {
		if k.n == 0 {
			t.Errorf("Stats().%s = 0 after %d faults from seed (1, 2); want each kind", k.name, faults(st))
		}
	}
	// Every acknowledged INCR was applied; unacknowledged ones may or may
	// not have been, but nothing was applied that was never sent.
	got, err := direct.Get(context.Background(), "n").Int64()
	if err != nil && acked > 0 {
		t.Fatalf("GET n direct: %v", err)
	}
	if got < acked || got > attempts {
		t.Fatalf("n = %d after %d acked of %d INCR attempts; want within [acked, attempts]", got, acked, attempts)
	}
	redistest.WaitFor(t, "PING through the proxy once Chaos returned", func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

func TestChaosPanicsOnBadIntervals(t *testing.T) {
	for _, tc := range []struct {
		min, max time.Duration
	}{
		{0, time.Second},
		{-time.Millisecond, time.Second},
		{time.Second, time.Millisecond},
	} {
		t.Run(tc.min.String()+"-"+tc.max.String(), func(t *testing.T) {
			p := New(t, "127.0.0.1:1")
			defer func() {
				if recover() == nil {
					t.Errorf("Chaos(ctx, rng, %v, %v) did not panic", tc.min, tc.max)
				}
			}()
			p.Chaos(context.Background(), rand.New(rand.NewPCG(1, 2)), tc.min, tc.max)
		})
	}
}
