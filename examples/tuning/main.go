// Command tuning drives the flush-interval tuner from code: it describes
// its own load (how many counters, how skewed, how fast), sweeps a few
// intervals with package bench/tune, and prints the interval to configure
// for the staleness it can accept, with a chart.
//
//	go run ./examples/tuning -max-staleness 250ms -plot tuning.png
//
// Redis is -redis, else $REDIS_URL, else redis://localhost:6379. The same
// sweep with every knob is `go run ./bench tune`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/bench/tune"
	"github.com/abacus-go/abacus/engine"
)

func main() {
	url := flag.String("redis", "", "Redis URL (default $REDIS_URL, else redis://localhost:6379)")
	maxStale := flag.Duration("max-staleness", 250*time.Millisecond, "staleness the application accepts")
	plot := flag.String("plot", "", "write the chart to this .png or .svg")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *url == "" {
		*url = os.Getenv("REDIS_URL")
	}
	if *url == "" {
		*url = "redis://localhost:6379"
	}
	opts, err := redis.ParseURL(*url)
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	interval, err := choose(ctx, rdb, profile(), *maxStale, *plot, os.Stdout)
	if err != nil {
		log.Fatal(err)
	}
	// What the application would then do:
	e, err := engine.New(rdb, engine.Options{FlushInterval: interval})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close(context.Background())
	fmt.Printf("engine.New(rdb, engine.Options{FlushInterval: %v})\n", interval)
}

// profile describes this application's load: 5,000 product pages, a few
// of them very popular, 50,000 views a second over 16 handler goroutines.
func profile() tune.Options {
	return tune.Options{
		Keys:       5000,
		Skew:       1.2,
		Goroutines: 16,
		Rate:       50_000,
		Intervals: []time.Duration{25 * time.Millisecond, 50 * time.Millisecond,
			100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond},
		Duration: time.Second,
		Progress: os.Stderr,
	}
}

// choose sweeps p, prints the table (and a chart to plot, if set), and
// returns the recommended interval for maxStale, or an error when none
// meets it.
func choose(ctx context.Context, rdb redis.UniversalClient, p tune.Options, maxStale time.Duration, plot string, out io.Writer) (time.Duration, error) {
	rep, err := tune.Run(ctx, rdb, p)
	if err != nil {
		return 0, err
	}
	rep.WriteTable(out, maxStale)
	if plot != "" {
		if err := rep.Plot(plot, maxStale); err != nil {
			return 0, err
		}
		fmt.Fprintf(out, "chart: %s\n", plot)
	}
	rec := rep.Recommend(maxStale)
	if rec.Step == nil {
		return 0, fmt.Errorf("tuning: %s", rec.Reason)
	}
	return rec.Step.Interval, nil
}
