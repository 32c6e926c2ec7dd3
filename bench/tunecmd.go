package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/abacus-go/abacus/bench/tune"
	"github.com/abacus-go/abacus/flush"
)

// durationList is a flag of comma-separated durations.
type durationList []time.Duration

func (l *durationList) String() string {
	s := make([]string, len(*l))
	for i, d := range *l {
		s[i] = d.String()
	}
	return strings.Join(s, ",")
}

func (l *durationList) Set(v string) error {
	*l = nil
	for _, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		if d <= 0 {
			return fmt.Errorf("interval %v must be positive", d)
		}
		*l = append(*l, d)
	}
	return nil
}

func runTune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tune", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o tune.Options
	url := fs.String("redis", "", "Redis URL (default $REDIS_URL, else an embedded redis-server or in-process miniredis)")
	fs.IntVar(&o.Keys, "keys", 1000, "distinct counters")
	fs.Float64Var(&o.Skew, "skew", 1.1, "Zipf exponent of key popularity (> 1; negative: uniform)")
	fs.IntVar(&o.Goroutines, "goroutines", 8, "goroutines adding")
	fs.Float64Var(&o.Rate, "rate", 200_000, "target adds per second, all goroutines together")
	intervals := durationList(tune.DefaultIntervals)
	fs.Var(&intervals, "intervals", "flush intervals to sweep, comma-separated")
	fs.DurationVar(&o.Duration, "duration", 2*time.Second, "least measuring time per interval (each also lasts ≥ 3 intervals)")
	fs.IntVar(&o.Probes, "probes", 2, "staleness probe goroutines")
	plain := fs.Bool("at-least-once", false, "tune the plain INCRBY mode instead of exactly-once")
	maxStale := fs.Duration("max-staleness", 500*time.Millisecond, "staleness the recommended interval must meet")
	plotPath := fs.String("plot", "", "write a chart to this .png or .svg file")
	csvPath := fs.String("csv", "", "write the sweep as CSV to this file (- for stdout)")
	if err := parse(fs, args); err != nil {
		return err
	}
	o.Intervals = intervals
	if *plain {
		o.Delivery = flush.AtLeastOnce
	}
	if *maxStale <= 0 {
		fmt.Fprintln(stderr, "tune: -max-staleness must be positive")
		return errUsage
	}
	tg, err := openTarget(ctx, *url, stderr)
	if err != nil {
		return err
	}
	defer tg.Close()
	if !tg.Lua && o.Delivery == flush.ExactlyOnce {
		fmt.Fprintln(stderr, "note: this Redis has no Lua; tuning the at-least-once mode")
		o.Delivery = flush.AtLeastOnce
	}
	var total time.Duration
	for _, iv := range o.Intervals {
		total += max(o.Duration, 3*iv)
	}
	fmt.Fprintf(stderr, "sweeping %d intervals, about %v\n", len(o.Intervals), total.Round(time.Second))
	o.Progress = stderr
	rdb := tg.Client(0)
	defer rdb.Close()
	rep, err := tune.Run(ctx, rdb, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Redis: %s\n", tg)
	if err := rep.WriteTable(stdout, *maxStale); err != nil {
		return err
	}
	if *csvPath != "" {
		w := stdout
		if *csvPath != "-" {
			f, err := os.Create(*csvPath)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		if err := rep.WriteCSV(w, *maxStale); err != nil {
			return err
		}
	}
	if *plotPath != "" {
		if err := rep.Plot(*plotPath, *maxStale); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "chart: %s\n", *plotPath)
	}
	return nil
}
