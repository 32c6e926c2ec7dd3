// Package redistest gives tests a real Redis: the one at REDIS_URL when set,
// otherwise a redis-server spawned from PATH on a free loopback port in a
// temporary directory, stopped and removed when the test ends.
//
// When no Redis can be had, tests skip with a message saying why, unless
// REQUIRE_REDIS=1, in which case they fail: CI sets it so that a missing
// server can never turn into a green run that tested nothing.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redisproc"
)

// Required reports whether REQUIRE_REDIS asks for Redis tests to fail
// rather than skip when no Redis is available.
func Required() bool { return os.Getenv("REQUIRE_REDIS") == "1" }

// Unavailable skips t, or fails it under REQUIRE_REDIS=1, with the reason.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("redis required (REQUIRE_REDIS=1) but unavailable: %s", msg)
	}
	t.Skipf("redis unavailable, skipping: %s (install redis-server or set REDIS_URL)", msg)
}

// Client returns a client for the shared test Redis: REDIS_URL when set,
// otherwise a server spawned for this test. Keys must be namespaced with
// Prefix, since REDIS_URL may be shared by parallel test binaries.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	if url := os.Getenv("REDIS_URL"); url != "" {
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("REDIS_URL %q: %v", url, err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		if err := c.Ping(context.Background()).Err(); err != nil {
			Unavailable(t, "REDIS_URL %s: %v", url, err)
		}
		return c
	}
	return Start(t, Options{}).Client(t)
}

// Prefix returns a key prefix unique to this test run, for isolation on a
// shared server. A test's names the test, for whoever reads the server's
// keys. A benchmark's is short, so that its keys are as long as an
// application's: Redis runs a script's commands on arguments of up to 64
// bytes without an allocation each, and a prefix with the benchmark's name
// (keys of 70 bytes and more) would tax the script paths it measures, and
// not their plain-command references, by a fifth.
func Prefix(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	if _, bench := t.(*testing.B); bench {
		return "b:" + hex.EncodeToString(b[:]) + ":"
	}
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return "t:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

// Options configures a spawned server.
type Options struct {
	// AppendOnly turns on appendonly with fsync always, so that a Restart
	// keeps every acknowledged write.
	AppendOnly bool
	// Args are extra redis-server arguments, e.g. "--replicaof", "127.0.0.1 6379".
	Args []string
}

// Server is a redis-server process owned by a test (see package
// redisproc). It is not safe for concurrent use.
type Server struct {
	Addr string
	Port int
	Dir  string

	t    testing.TB
	proc *redisproc.Server
}

// Start spawns a redis-server on a free loopback port, stopped when the
// test ends. It skips or fails (see Unavailable) when redis-server is not
// on PATH or does not start.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Unavailable(t, "redis-server not on PATH")
	}
	dir := t.TempDir()
	proc, err := redisproc.Start(redisproc.Options{Dir: dir, AppendOnly: opts.AppendOnly, Args: opts.Args})
	if err != nil {
		Unavailable(t, "%v", err)
	}
	t.Cleanup(proc.Kill)
	return &Server{Addr: proc.Addr, Port: proc.Port, Dir: dir, t: t, proc: proc}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := redisproc.FreePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return port
}

// Client returns a new client for s, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// URL is the redis:// address of s.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Stop shuts the server down; with AppendOnly its data survives a Restart.
func (s *Server) Stop() { s.proc.Stop() }

// Kill ends the server with SIGKILL: whatever it had not persisted is gone.
func (s *Server) Kill() { s.proc.Kill() }

// Restart starts the server again on the same port and directory.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.proc.Restart(); err != nil {
		s.t.Fatal(err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// WaitFor polls cond until it holds, failing t if it does not within a
// minute: for state that Redis or a background goroutine reaches
// eventually. The minute is a hang guard, not a timing assertion.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitForWithin(t, what, time.Minute, cond)
}

// WaitForWithin is WaitFor with a hang guard of d instead of a minute, for
// conditions that take a busy machine many seconds of work to reach (a
// race-instrumented engine flushing tens of thousands of keys, say).
func WaitForWithin(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
