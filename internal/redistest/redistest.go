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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
// shared server.
func Prefix(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
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

// Server is a redis-server process owned by a test. It is not safe for
// concurrent use.
type Server struct {
	Addr string
	Port int
	Dir  string

	t      testing.TB
	opts   Options
	cmd    *exec.Cmd
	exited chan error // receives the process's exit once
}

// Start spawns a redis-server on a free loopback port. It skips or fails
// (see Unavailable) when redis-server is not on PATH or does not start.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(t, "redis-server not on PATH")
	}
	_ = bin // LookPath only tells us whether to skip; exec finds it again
	s := &Server{t: t, opts: opts, Dir: t.TempDir()}
	for attempt := 0; ; attempt++ {
		s.Port = FreePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			Unavailable(t, "redis-server did not start: %v", err)
		}
	}
	t.Cleanup(s.kill)
	return s
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) args() []string {
	a := []string{
		"--port", strconv.Itoa(s.Port),
		"--bind", "127.0.0.1",
		"--dir", s.Dir,
		"--save", "",
		"--daemonize", "no",
		"--logfile", filepath.Join(s.Dir, "redis.log"),
	}
	if s.opts.AppendOnly {
		a = append(a, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		a = append(a, "--appendonly", "no")
	}
	return append(a, s.opts.Args...)
}

func (s *Server) start() error {
	cmd := exec.Command("redis-server", s.args()...)
	cmd.Dir = s.Dir
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			return fmt.Errorf("exited: %v\n%s", err, tail(string(log), 800))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return fmt.Errorf("no PING reply within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
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
func (s *Server) Stop() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	// SHUTDOWN closes the connection instead of replying; its error is expected.
	c.Shutdown(context.Background())
	c.Close()
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Kill ends the server with SIGKILL: whatever it had not persisted is gone.
func (s *Server) Kill() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
}

func (s *Server) kill() { s.Kill() }

// Restart starts the server again on the same port and directory.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger briefly
	}
	s.t.Fatalf("redis-server restart on %s: %v", s.Addr, err)
}
