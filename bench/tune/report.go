package tune

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }

// WriteTable writes the sweep for people, marking the recommended step
// for maxStaleness.
func (r *Report) WriteTable(w io.Writer, maxStaleness time.Duration) error {
	o := r.Options
	skew := fmt.Sprintf("Zipf s=%g", o.Skew)
	if o.Skew < 0 {
		skew = "uniform"
	}
	fmt.Fprintf(w, "load: %d keys (%s), %d goroutines, target %.0f adds/s, %s; %d staleness probes\n\n",
		o.Keys, skew, o.Goroutines, o.Rate, o.Delivery, o.Probes)
	fmt.Fprintf(w, "%9s %11s %12s %12s %9s %9s %9s %7s %6s %9s %9s %11s %6s\n",
		"interval", "adds/s", "Redis cmd/s", "Redis B/s", "p50 ms", "p99 ms", "max ms", "samples",
		"CPU", "flush ms", "bound ms", "crash loss", "exact")
	rec := r.Recommend(maxStaleness)
	for i := range r.Steps {
		s := &r.Steps[i]
		mark := ""
		if rec.Step == s {
			mark = "  <- recommended"
		}
		fmt.Fprintf(w, "%9v %11.0f %12.0f %12.0f %9s %9s %9s %7d %6.2f %9s %9s %11.0f %6v%s\n",
			s.Interval, s.AddsPerSec, s.RedisCommandsPerSec, s.RedisBytesPerSec,
			ms(s.StalenessP50), ms(s.StalenessP99), ms(s.StalenessMax), s.Samples, s.CPU,
			ms(s.MaxFlushDuration), ms(s.Bound), s.WorstLoss, s.Exact, mark)
	}
	fmt.Fprintf(w, "\nstaleness: add → value readable in Redis, by probes polling with GET (resolution ≈ interval/20,\n"+
		"1–50 ms); bound = max(observed max, interval + longest flush); crash loss = adds/s × bound;\n"+
		"CPU in cores for the whole process (load generator and probes included).\n"+
		"recommendation for -max-staleness %v: %s\n", maxStaleness, rec.Reason)
	return nil
}

// csvHeader names WriteCSV's columns.
var csvHeader = []string{"interval_ms", "seconds", "adds_per_sec", "redis_commands_per_sec",
	"redis_bytes_per_sec", "staleness_p50_ms", "staleness_p99_ms", "staleness_max_ms", "samples",
	"resolution_ms", "cpu_cores", "max_flush_ms", "bound_ms", "worst_loss_adds", "exact", "recommended"}

// WriteCSV writes one row per step, with a header, marking the step
// recommended for maxStaleness.
func (r *Report) WriteCSV(w io.Writer, maxStaleness time.Duration) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	rec := r.Recommend(maxStaleness)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for i := range r.Steps {
		s := &r.Steps[i]
		cw.Write([]string{ms(s.Interval), f(s.Seconds), f(s.AddsPerSec), f(s.RedisCommandsPerSec),
			f(s.RedisBytesPerSec), ms(s.StalenessP50), ms(s.StalenessP99), ms(s.StalenessMax),
			strconv.Itoa(s.Samples), ms(s.Resolution), f(s.CPU), ms(s.MaxFlushDuration), ms(s.Bound),
			f(s.WorstLoss), strconv.FormatBool(s.Exact), strconv.FormatBool(rec.Step == s)})
	}
	cw.Flush()
	return cw.Error()
}
