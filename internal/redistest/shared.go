package redistest

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on %s did not answer PING", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "redis://" + addr, stop, nil
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
