package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/abacus-go/abacus/bench/internal/target"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it parses args, runs a subcommand and
// returns the exit code (0 ok, 1 failure, 2 usage).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := "compare"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	var err error
	switch sub {
	case "compare":
		err = runCompare(ctx, args, stdout, stderr)
	case "tune":
		err = runTune(ctx, args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "bench: unknown subcommand %q\n%s", sub, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "bench: %v\n", err)
	return 1
}

const usage = `usage: go run ./bench [compare] [flags]   compare the engine with what users pick instead (default)
       go run ./bench tune [flags]        sweep flush intervals and recommend one
       go run ./bench <subcommand> -h     flags of a subcommand
Redis: -redis URL or $REDIS_URL; otherwise a redis-server spawned from PATH,
otherwise miniredis in this process (with a banner saying so).
`

// errUsage marks a bad command line (already reported by package flag).
var errUsage = errors.New("usage")

// parse parses the command line of a subcommand, and applies -redis-log,
// which every subcommand takes.
func parse(fs *flag.FlagSet, args []string) error {
	redisLog := redisLogFlag(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %q\n", fs.Args())
		return errUsage
	}
	return redisLog()
}

// openTarget opens the Redis named by -redis or REDIS_URL, or the embedded
// default, and announces it on stderr.
func openTarget(ctx context.Context, url string, stderr io.Writer) (*target.Target, error) {
	if url == "" {
		url = os.Getenv("REDIS_URL")
	}
	tg, err := target.Open(ctx, url, stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "Redis: %s\n", tg)
	return tg, nil
}

func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := compareConfig{}
	url := fs.String("redis", "", "Redis URL (default $REDIS_URL, else an embedded redis-server or in-process miniredis)")
	fs.DurationVar(&cfg.duration, "duration", time.Second, "how long to measure each row in each round")
	fs.IntVar(&cfg.rounds, "rounds", 3, "interleaved rounds: each runs every row once; rows report the median")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "goroutines for the concurrent rows")
	fs.IntVar(&cfg.pipeline, "pipeline", 100, "INCRs per round trip in the go-redis Pipeline row")
	fs.IntVar(&cfg.keys, "keys", 10000, "distinct names in the engine Add(name) row")
	fs.DurationVar(&cfg.flushInterval, "flush", 100*time.Millisecond, "engine flush interval")
	only := fs.String("only", "", "comma-separated row ids or groups (counter, serial, lease, unique, once, queue) to run")
	asJSON := fs.Bool("json", false, "print the report as JSON (schema "+SchemaCompare+", see bench/README.md)")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress display on stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if cfg.duration <= 0 || cfg.rounds <= 0 || cfg.concurrency <= 0 || cfg.pipeline <= 0 || cfg.keys <= 0 || cfg.flushInterval <= 0 {
		fmt.Fprintln(stderr, "compare: -duration, -rounds, -concurrency, -pipeline, -keys and -flush must be positive")
		return errUsage
	}
	if *only != "" {
		cfg.only = strings.Split(*only, ",")
	}
	tg, err := openTarget(ctx, *url, stderr)
	if err != nil {
		return err
	}
	defer tg.Close()
	rep, err := compare(ctx, cfg, tg)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return writeTable(stdout, rep)
}
