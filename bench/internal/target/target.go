// Package target finds the Redis a benchmark runs against: the one at a
// given URL, else a redis-server spawned from PATH on a free loopback port,
// else miniredis running in this process, and says which.
package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redisproc"
)

// Kind says where a Target's Redis came from.
type Kind string

// The kinds of Target.
const (
	URL       Kind = "url"        // given with -redis or REDIS_URL
	Spawned   Kind = "spawned"    // redis-server from PATH, owned by this process
	InProcess Kind = "in-process" // miniredis in this process: runs Lua, but is not Redis
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
// redis-server from PATH, and when that is not possible starts miniredis
// in this process.
// It writes a line about a fallback to log.
func Open(ctx context.Context, url string, log io.Writer) (*Target, error) {
	if url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis URL %q: %w", url, err)
		}
		return finish(ctx, &Target{Kind: URL, Addr: opts.Addr, opts: opts, close: func() {}})
	}
	t, err := spawn()
	if err == nil {
		return finish(ctx, t)
	}
	fmt.Fprintf(log, "note: no redis-server to spawn (%v); using miniredis in this process\n", err)
	t, ierr := startInProcess()
	if ierr != nil {
		return nil, errors.Join(err, ierr)
	}
	return finish(ctx, t)
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

// Close stops a spawned or in-process server; for a URL it does nothing.
func (t *Target) Close() { t.close() }

// String describes the target in one line, for banners and reports.
func (t *Target) String() string {
	switch t.Kind {
	case Spawned:
		return fmt.Sprintf("redis-server %s spawned from PATH at %s (embedded default)", t.Version, t.Addr)
	case InProcess:
		return fmt.Sprintf("IN-PROCESS %s at %s (no redis-server on PATH and no -redis/REDIS_URL): "+
			"it runs the scripts, but its figures are in-process ones, not a Redis server's", t.Version, t.Addr)
	}
	return fmt.Sprintf("Redis %s at %s (from -redis/REDIS_URL)", t.Version, t.Addr)
}

// spawn starts redis-server on a free loopback port in a temporary
// directory, without persistence, and waits for it to answer.
func spawn() (*Target, error) {
	dir, err := os.MkdirTemp("", "abacus-bench-")
	if err != nil {
		return nil, err
	}
	proc, err := redisproc.Start(redisproc.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop := func() {
		proc.Kill()
		os.RemoveAll(dir)
	}
	return &Target{Kind: Spawned, Addr: proc.Addr, opts: &redis.Options{Addr: proc.Addr}, close: stop}, nil
}
