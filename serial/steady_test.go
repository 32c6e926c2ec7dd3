package serial_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/serial"
)

// TestSteadyRate takes IDs at a steady rate and reports the latency
// distribution of Next and how often a caller had to wait for Redis. It
// measures time, so it asserts nothing about it and runs only when asked:
//
//	SERIAL_STEADY=1 go test -run TestSteadyRate -v ./serial/
//
// SERIAL_STEADY_RATE (IDs/s, default 200000) and SERIAL_STEADY_SECONDS
// (default 10) change the load. MaxBlock 16384 forces ≥ 100 fetches at the
// default load. The same load is then run with PrefetchThreshold 1e-9, so
// that the next block is requested only when the IDs left would last four
// times the slowest recent fetch (see Stats.FetchTime), to show what the
// threshold's margin saves.
func TestSteadyRate(t *testing.T) {
	if os.Getenv("SERIAL_STEADY") == "" {
		t.Skip("timing report; set SERIAL_STEADY=1 to run")
	}
	rate := envInt(t, "SERIAL_STEADY_RATE", 200_000)
	seconds := envInt(t, "SERIAL_STEADY_SECONDS", 10)
	rdb := redistest.Client(t)
	runs := []struct {
		name string
		opts serial.Options
	}{
		{"prefetch at 50% (default)", serial.Options{MinBlock: 1024, MaxBlock: 16384}},
		{"prefetch at the fetch time alone (threshold 1e-9)", serial.Options{MinBlock: 1024, MaxBlock: 16384, PrefetchThreshold: 1e-9}},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			a, err := serial.New(rdb, redistest.Prefix(t)+"steady", r.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close(context.Background())
			lat, elapsed := paced(t, a, rate, time.Duration(seconds)*time.Second)
			st := a.Stats()
			slices.Sort(lat)
			q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
			var over100us int
			for _, d := range lat {
				if d > 100*time.Microsecond {
					over100us++
				}
			}
			threshold := r.opts.PrefetchThreshold
			if threshold == 0 {
				threshold = serial.DefaultPrefetchThreshold
			}
			t.Logf("\n%s: %d IDs in %v (%.0f IDs/s, target %d/s), MinBlock %d, MaxBlock %d, threshold %v\n"+
				"  Next latency (each timed with two time.Now calls, ~40ns of it): p50 %v  p99 %v  p999 %v  max %v  (%d calls > 100µs)\n"+
				"  blocks fetched %d = round trips %d, fetch errors %d, final block size %d\n"+
				"  callers that waited for Redis: %d (of %d calls; the first Next always waits)",
				r.name, len(lat), elapsed.Round(time.Millisecond), float64(len(lat))/elapsed.Seconds(), rate,
				r.opts.MinBlock, r.opts.MaxBlock, threshold,
				q(0.50), q(0.99), q(0.999), lat[len(lat)-1], over100us,
				st.Blocks, st.RoundTrips, st.FetchErrors, st.BlockSize,
				st.Waits, len(lat))
			if st.Issued != int64(len(lat)) {
				t.Errorf("Stats().Issued = %d; want %d", st.Issued, len(lat))
			}
		})
	}
}

// paced calls Next rate times a second for d, in bursts every millisecond
// (the pace a ticker-driven producer has), and returns each call's latency.
func paced(t *testing.T, a *serial.Allocator, rate int, d time.Duration) ([]time.Duration, time.Duration) {
	t.Helper()
	total := int(int64(rate) * int64(d) / int64(time.Second))
	lat := make([]time.Duration, 0, total)
	ctx := context.Background()
	start := time.Now()
	for len(lat) < total {
		due := min(total, int(int64(rate)*int64(time.Since(start))/int64(time.Second)))
		for len(lat) < due {
			t0 := time.Now()
			_, err := a.Next(ctx)
			lat = append(lat, time.Since(t0))
			if err != nil {
				t.Fatalf("Next #%d: %v", len(lat), err)
			}
		}
		time.Sleep(time.Millisecond)
	}
	return lat, time.Since(start)
}

func envInt(t *testing.T, name string, def int) int {
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
