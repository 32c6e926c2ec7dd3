// Package target finds the Redis a benchmark runs against: the one at a
// given URL, else a redis-server spawned from PATH on a free loopback port,
// else an in-process fake (package internal/fakeredis), and says which.
package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/fakeredis"
)

// Kind says where a Target's Redis came from.
type Kind string

// The kinds of Target.
const (
	URL     Kind = "url"     // given with -redis or REDIS_URL
	Spawned Kind = "spawned" // redis-server from PATH, owned by this process
	Fake    Kind = "fake"    // the in-process fake: no Lua, not a real Redis
)

// Target is a Redis to benchmark. Close releases what Open started. It is
// safe for concurrent use.
type Target struct {
	Kind    Kind
	Addr    string // host:port
	Version string // redis_version from INFO server
	// Lua reports whether the server runs scripts (EVAL); abacus'
	// exactly-once mode and package lease need it.
	Lua bool

	opts  *redis.Options
	close func()
}

// Open returns the Redis at url when url is not empty; otherwise it spawns
// redis-server from PATH, and when that is not possible starts the fake.
// It writes a line about a fallback to log.
func Open(ctx context.Context, url string, log io.Writer) (*Target, error) {
	if url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis URL %q: %w", url, err)
		}
		return finish(ctx, &Target{Kind: URL, Addr: opts.Addr, opts: opts, close: func() {}})
	}
	t, err := spawn(ctx)
	if err == nil {
		return finish(ctx, t)
	}
	fmt.Fprintf(log, "note: no redis-server to spawn (%v); using the in-process fake\n", err)
	s, ferr := fakeredis.Start("")
	if ferr != nil {
		return nil, errors.Join(err, ferr)
	}
	return finish(ctx, &Target{Kind: Fake, Addr: s.Addr(),
		opts: &redis.Options{Addr: s.Addr()}, close: func() { s.Close() }})
}

func finish(ctx context.Context, t *Target) (*Target, error) {
	c := t.Client(1)
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("redis at %s: %w", t.Addr, err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			t.Version = v
		}
	}
	t.Lua = c.Eval(ctx, "return 1", nil).Err() == nil
	return t, nil
}

// Client returns a new client for the target with a pool of poolSize
// connections (0: go-redis' default). The caller closes it.
func (t *Target) Client(poolSize int) *redis.Client {
	o := *t.opts
	o.PoolSize = poolSize
	return redis.NewClient(&o)
}

// Close stops a spawned or fake server; for a URL it does nothing.
func (t *Target) Close() { t.close() }

// String describes the target in one line, for banners and reports.
func (t *Target) String() string {
	switch t.Kind {
	case Spawned:
		return fmt.Sprintf("redis-server %s spawned from PATH at %s (embedded default)", t.Version, t.Addr)
	case Fake:
		return fmt.Sprintf("in-process FAKE Redis at %s (no redis-server on PATH and no -redis/REDIS_URL): "+
			"no Lua, so exactly-once mode is skipped; figures are not Redis'", t.Addr)
	}
	return fmt.Sprintf("Redis %s at %s (from -redis/REDIS_URL)", t.Version, t.Addr)
}

// spawn starts redis-server on a free loopback port in a temporary
// directory, without persistence, and waits for it to answer.
func spawn(ctx context.Context) (*Target, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "abacus-bench-")
	if err != nil {
		return nil, err
	}
	var last error
	for range 3 {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no",
			"--logfile", filepath.Join(dir, "redis.log"))
		cmd.SysProcAttr = childAttr() // dies with us where the OS allows
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
			os.RemoveAll(dir)
		}
		if last = waitPing(ctx, addr, exited); last == nil {
			return &Target{Kind: Spawned, Addr: addr, opts: &redis.Options{Addr: addr}, close: stop}, nil
		}
		cmd.Process.Kill()
		<-exited
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not start: %w", last)
}

func waitPing(ctx context.Context, addr string, exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.Ping(pctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited at start (port taken?)")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PING reply within 5s: %w", err)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
