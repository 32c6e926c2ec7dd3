// Command pageviews is a web server that counts page views per path with
// abacus: a middleware adds 1 per request in memory, the engine writes the
// totals to Redis every flush interval, /counts reads them back and
// /metrics exports the engine's Stats to Prometheus (package metrics). On
// SIGINT or SIGTERM it drains requests and flushes every view before it
// exits.
//
//	go run ./examples/pageviews serve -addr :8080           # Redis at $REDIS_URL or localhost:6379
//	go run ./examples/pageviews load -url http://localhost:8080 -n 1000000 -c 64
//	go run ./examples/pageviews inprocess -d 5s             # the handler without sockets
//
// See README.md for the recipe.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redislog"
)

func main() {
	log.SetFlags(log.Ltime)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pageviews serve|load|inprocess [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = serveCmd(ctx, os.Args[2:])
	case "load":
		err = loadCmd(ctx, os.Args[2:])
	case "inprocess":
		err = inprocessCmd(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q (serve, load, inprocess)", os.Args[1])
	}
	if err != nil {
		log.Print(err)
		stop()
		os.Exit(1)
	}
}

// redisClient connects to url, or $REDIS_URL, or localhost:6379.
func redisClient(url string) (*redis.Client, error) {
	if url == "" {
		url = os.Getenv("REDIS_URL")
	}
	if url == "" {
		url = "redis://localhost:6379"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opts), nil
}

func serveCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "localhost:8080", "listen address")
	url := fs.String("redis", "", "Redis URL (default $REDIS_URL, else redis://localhost:6379)")
	interval := fs.Duration("flush", 100*time.Millisecond, "engine flush interval")
	grace := fs.Duration("grace", 10*time.Second, "time to drain requests and flush on shutdown")
	redisLog := fs.String("redis-log", redislog.Summary, "go-redis' own log (dial failures while Redis is down): "+
		redislog.Modes+"; summary logs the first line of a kind, then one per 10s with a count")
	fs.Parse(args)
	if err := redislog.Set(*redisLog, slog.Default()); err != nil {
		return err
	}
	rdb, err := redisClient(*url)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	e, err := engine.New(rdb, engine.Options{FlushInterval: *interval})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		e.Close(ctx)
		return err
	}
	return serve(ctx, ln, e, *grace, log.Printf)
}

func loadCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "http://localhost:8080", "server base URL")
	n := fs.Int("n", 100_000, "requests to send")
	c := fs.Int("c", 32, "concurrent connections")
	paths := fs.Int("paths", 100, "distinct paths")
	fs.Parse(args)
	res, err := load(ctx, *url, *n, *c, *paths)
	if res != nil {
		log.Printf("sent %d requests over %d paths in %v: %.0f requests/s",
			res.Total, len(res.Sent), res.Elapsed.Round(time.Millisecond), float64(res.Total)/res.Elapsed.Seconds())
	}
	return err
}
