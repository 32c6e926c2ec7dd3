package serial_test

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

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// exampleURL is the Redis the Example functions use, set once by TestMain
// before any test runs and only read afterwards.
var exampleURL string

// redisExamples matches the examples that need Redis.
const redisExamples = "^(Example|ExampleAllocator_.*|ExampleReseed)$"

// TestMain doubles as the entry point of the child processes of
// TestManyProcessesNeverDuplicate (see childMain), and gives the Example
// functions, which cannot skip, a Redis: REDIS_URL, or a redis-server
// spawned for this binary. Without either they are skipped with a notice,
// or fail under REQUIRE_REDIS=1 like every Redis test.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	flag.Parse()
	url, stop, err := exampleRedis()
	switch {
	case err == nil:
		exampleURL = url
	case redistest.Required():
		fmt.Fprintf(os.Stderr, "examples: redis required (REQUIRE_REDIS=1) but unavailable: %v\n", err)
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "examples: redis unavailable, skipping %s: %v\n", redisExamples, err)
		skip := redisExamples
		if s := flag.Lookup("test.skip").Value.String(); s != "" {
			skip = s + "|" + skip
		}
		flag.Set("test.skip", skip)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// exampleRedis returns REDIS_URL, or starts a redis-server and returns its
// URL and a func that kills it and removes its directory.
func exampleRedis() (url string, stop func(), err error) {
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
	dir, err := os.MkdirTemp("", "serial-examples-")
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
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c.Ping(context.Background()).Err() == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			os.RemoveAll(dir)
			return "", nil, fmt.Errorf("redis-server on %s did not answer PING", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	return "redis://" + addr, stop, nil
}

// exampleClient returns a client for the examples' Redis.
func exampleClient() *redis.Client {
	opt, err := redis.ParseURL(exampleURL)
	if err != nil {
		panic(err) // TestMain checked it; examples have no *testing.T
	}
	return redis.NewClient(opt)
}
