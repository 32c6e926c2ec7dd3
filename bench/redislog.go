package main

import (
	"flag"
	"fmt"
	"log/slog"

	"github.com/abacus-go/abacus/internal/redislog"
)

// redisLogFlag adds -redis-log to fs. The function it returns, called
// after fs is parsed, routes go-redis' own log (dial failures while Redis
// is unreachable, a few lines a second otherwise) accordingly, to fs'
// output; it returns errUsage for an unknown mode.
func redisLogFlag(fs *flag.FlagSet) func() error {
	mode := fs.String("redis-log", redislog.Summary, "go-redis' own log: "+redislog.Modes+
		" (summary: the first line of a kind, then one per 10s with a count)")
	return func() error {
		if err := redislog.Set(*mode, slog.New(slog.NewTextHandler(fs.Output(), nil))); err != nil {
			fmt.Fprintln(fs.Output(), err)
			return errUsage
		}
		return nil
	}
}
