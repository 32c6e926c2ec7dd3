package serial

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestFailoverWindow measures whether Next stalls while no block can be
// acknowledged, as through a failover until the new master has a replica:
// IDs are taken at a steady rate, then the only replica is stopped for a
// window and restarted. It measures time, so it asserts nothing about it
// and runs only when asked:
//
//	SERIAL_STEADY=1 go test -run TestFailoverWindow -v ./serial/
//
// SERIAL_STEADY_RATE (IDs/s, default 20000) and SERIAL_WINDOW_SECONDS
// (default 11, what the issue measured after a Sentinel failover) change
// the load. Each run warms up for 15 s first, so that the block size and
// the reserve have adapted to the rate.
func TestFailoverWindow(t *testing.T) {
	if os.Getenv("SERIAL_STEADY") == "" {
		t.Skip("timing report; set SERIAL_STEADY=1 to run")
	}
	rate := envPositive(t, "SERIAL_STEADY_RATE", 20_000)
	window := time.Duration(envPositive(t, "SERIAL_WINDOW_SECONDS", 11)) * time.Second
	for _, r := range []struct {
		name string
		opts Options
	}{
		{"default (auto WAIT, 60s reserve)", Options{}},
		{"auto WAIT, no reserve (one block ahead)", Options{Reserve: -1}},
	} {
		t.Run(r.name, func(t *testing.T) {
			master, replica := startReplicated(t)
			a := newAllocator(t, master.Client(t), "window", r.opts)
			p := &pacer{t: t, a: a, rate: rate}
			p.run(15 * time.Second)
			before, warm := a.Stats(), p.report
			p.report = windowReport{}

			replica.Stop()
			p.run(window)
			during := p.report
			p.report = windowReport{}
			replica.Restart()
			waitOnline(t, master.Client(t))
			p.run(5 * time.Second)
			after := a.Stats()
			t.Logf("\n%s, %d IDs/s, replica down for %v:\n"+
				"  warm-up: %s\n"+
				"  when the replica stopped: block size %d, %d blocks ahead, %d IDs in hand, runway %v\n"+
				"  replica down: %s\n"+
				"  replica back: %s\n"+
				"  fetches unacknowledged %d, fetch errors %d, blocks %d",
				r.name, rate, window, warm, before.BlockSize, before.Ahead, before.InHand, before.Runway.Round(time.Millisecond),
				during, p.report, after.Unreplicated, after.FetchErrors, after.Blocks)
		})
	}
}

// windowReport is what a pacer saw over one period.
type windowReport struct {
	ids, errs int
	maxNext   time.Duration // slowest Next, error or not
	maxGap    time.Duration // longest time without an ID
	firstErr  error
	errAt     time.Duration // when firstErr came, from the start of the period
}

func (r windowReport) String() string {
	return "IDs " + strconv.Itoa(r.ids) + ", Next errors " + strconv.Itoa(r.errs) +
		", slowest Next " + r.maxNext.Round(time.Microsecond).String() +
		", longest without an ID " + r.maxGap.Round(time.Millisecond).String() + errSuffix(r.firstErr, r.errAt)
}

func errSuffix(err error, at time.Duration) string {
	if err == nil {
		return ""
	}
	return " (first after " + at.Round(time.Millisecond).String() + ": " + err.Error() + ")"
}

// pacer calls Next rate times a second, in bursts every millisecond; an
// error is counted and the call is not retried (the next one is due soon).
type pacer struct {
	t      *testing.T
	a      *Allocator
	rate   int
	report windowReport
}

func (p *pacer) run(d time.Duration) {
	ctx := context.Background()
	start := time.Now()
	last := start
	done := 0
	for time.Since(start) < d {
		due := int(int64(p.rate) * int64(time.Since(start)) / int64(time.Second))
		for ; done < due && time.Since(start) < d; done++ {
			t0 := time.Now()
			_, err := p.a.Next(ctx)
			p.report.maxNext = max(p.report.maxNext, time.Since(t0))
			if err != nil {
				p.report.errs++
				if p.report.firstErr == nil {
					p.report.firstErr, p.report.errAt = err, time.Since(start)
				}
				continue
			}
			p.report.ids++
			p.report.maxGap = max(p.report.maxGap, time.Since(last))
			last = time.Now()
		}
		time.Sleep(time.Millisecond)
	}
	if p.report.ids > 0 || p.report.errs > 0 {
		p.report.maxGap = max(p.report.maxGap, time.Since(last))
	}
}

func envPositive(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}
