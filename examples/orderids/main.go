// Command orderids hands out order numbers like ORD-20261125-000123 from
// package serial: unique across every process sharing the Redis key,
// increasing within a process, one Redis round trip per block of IDs.
//
//	go run ./examples/orderids next -n 5                 # five numbers on stdout
//	go run ./examples/orderids serve -addr :8081         # POST /orders, GET /stats
//	curl -X POST localhost:8081/orders                   # {"order":"ORD-20261125-000101","id":101}
//
// Redis is -redis, else $REDIS_URL, else redis://localhost:6379.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/serial"
)

func main() {
	log.SetFlags(log.Ltime)
	if len(os.Args) < 2 || os.Args[1] != "next" && os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: orderids next|serve [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		log.Print(err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	url := fs.String("redis", "", "Redis URL (default $REDIS_URL, else redis://localhost:6379)")
	key := fs.String("key", "orders:id", "Redis key of the sequence")
	prefix := fs.String("prefix", "ORD-", "order number prefix")
	width := fs.Int("width", 6, "least digits of the ID (zero-padded)")
	count := fs.Int("n", 1, "next: how many numbers")
	addr := fs.String("addr", "localhost:8081", "serve: listen address")
	fs.Parse(args)
	if *url == "" {
		*url = os.Getenv("REDIS_URL")
	}
	if *url == "" {
		*url = "redis://localhost:6379"
	}
	opts, err := redis.ParseURL(*url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ids, err := serial.New(rdb, *key, serial.Options{})
	if err != nil {
		return err
	}
	defer ids.Close(context.Background())
	n := &numbers{ids: ids, prefix: *prefix, width: *width, now: time.Now}
	if cmd == "next" {
		for range *count {
			s, err := n.next(ctx)
			if err != nil {
				return err
			}
			fmt.Println(s)
		}
		return nil
	}
	srv := &http.Server{Addr: *addr, Handler: n.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("serving on http://%s: POST /orders, GET /stats", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
