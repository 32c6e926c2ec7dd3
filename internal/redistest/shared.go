package redistest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redisproc"
)

// Shared returns the URL of a Redis for a whole test binary, for code that
// has no testing.TB (Example functions): REDIS_URL when set, otherwise a
// redis-server spawned on a free loopback port; stop ends it and removes
// its directory.
func Shared() (url string, stop func(), err error) {
	if url := os.Getenv("REDIS_URL"); url != "" {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return "", nil, err
		}
		c := redis.NewClient(opt)
		defer c.Close()
		if err := c.Ping(context.Background()).Err(); err != nil {
			return "", nil, fmt.Errorf("REDIS_URL %s: %w", url, err)
		}
		return url, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return "", nil, err
	}
	proc, err := redisproc.Start(redisproc.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return "redis://" + proc.Addr, func() { proc.Kill(); os.RemoveAll(dir) }, nil
}

// MainWithRedis is a TestMain body for packages whose Example functions
// need Redis: it runs m with a Shared Redis whose URL it passes to setURL
// first. Without Redis, the examples matching skip are skipped (with a
// message), or under REQUIRE_REDIS=1 the binary fails.
func MainWithRedis(m *testing.M, skip string, setURL func(string)) int {
	flag.Parse()
	url, stop, err := Shared()
	switch {
	case err == nil:
		setURL(url)
		defer stop()
	case Required():
		fmt.Fprintf(os.Stderr, "redis required (REQUIRE_REDIS=1) but unavailable: %v\n", err)
		return 1
	default:
		fmt.Fprintf(os.Stderr, "redis unavailable, skipping %s: %v\n", skip, err)
		if s := flag.Lookup("test.skip").Value.String(); s != "" {
			skip = s + "|" + skip
		}
		flag.Set("test.skip", skip)
	}
	return m.Run()
}
