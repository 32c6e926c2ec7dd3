package faultproxy

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// eventuallyWithin bounds every "eventually" in these tests: generous, since
// the machine may be busy, and never an assertion on how fast things are.
const eventuallyWithin = 10 * time.Second

// setup starts a Redis server and a proxy in front of it, and returns the
// proxy and a client that talks to the server directly.
func setup(t *testing.T) (*Proxy, *redis.Client) {
	t.Helper()
	s := redistest.Start(t, redistest.Options{})
	return New(t, s.Addr), s.Client(t)
}

// dial returns a client through p that never retries, holds one connection
// and gives up on a reply after readTimeout.
func dial(t *testing.T, p *Proxy, readTimeout time.Duration) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:        p.Addr(),
		MaxRetries:  -1,
		PoolSize:    1,
		DialTimeout: 2 * time.Second,
		ReadTimeout: readTimeout,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// connected returns dial's client with its connection already set up, so
// that a fault armed next hits the test's command, not the handshake.
func connected(t *testing.T, p *Proxy, readTimeout time.Duration) *redis.Client {
	t.Helper()
	c := dial(t, p, readTimeout)
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING through proxy: %v", err)
	}
	return c
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyForwards(t *testing.T) {
	p, direct := setup(t)
	c := dial(t, p, 0)
	ctx := context.Background()
	big := strings.Repeat("x", 3*bufSize+7) // several chunks each way
	for _, tc := range []struct {
		key, val string
	}{
		{"k", "v"},
		{"empty", ""},
		{"big", big},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if err := c.Set(ctx, tc.key, tc.val, 0).Err(); err != nil {
				t.Fatalf("SET %s through proxy: %v", tc.key, err)
			}
			if got, err := c.Get(ctx, tc.key).Result(); err != nil || got != tc.val {
				t.Fatalf("GET %s through proxy = %d bytes, %v; want %d bytes", tc.key, len(got), err, len(tc.val))
			}
			if got, err := direct.Get(ctx, tc.key).Result(); err != nil || got != tc.val {
				t.Fatalf("GET %s direct = %d bytes, %v; want %d bytes", tc.key, len(got), err, len(tc.val))
			}
		})
	}
	if st := p.Stats(); st.Accepted < 1 || st.Cut != 0 {
		t.Fatalf("Stats() = %+v; want Accepted >= 1, Cut 0", st)
	}
}

func TestProxyPipelines(t *testing.T) {
	p, direct := setup(t)
	c := dial(t, p, 0)
	ctx := context.Background()
	const n = 500
	cmds, err := c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i := 0; i < n; i++ {
			pipe.Incr(ctx, "n")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pipeline of %d INCR: %v", n, err)
	}
	if got := cmds[n-1].(*redis.IntCmd).Val(); got != n {
		t.Fatalf("last INCR of pipeline = %d; want %d", got, n)
	}
	if got, err := direct.Get(ctx, "n").Int(); err != nil || got != n {
		t.Fatalf("GET n direct = %d, %v; want %d", got, err, n)
	}
}

func TestProxyCloseAtTestEnd(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	var addr string
	t.Run("inner", func(t *testing.T) {
		p := New(t, s.Addr)
		addr = p.Addr()
		connected(t, p, time.Second)
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("dial %s after the test that owned the proxy ended: connected; want refused", addr)
	}
}

func TestProxyTargetDown(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t))) // nothing listens there
	p := New(t, addr)
	c := dial(t, p, time.Second)
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Fatal("PING through a proxy to a dead target succeeded")
	}
	redistest.WaitFor(t, "Stats().DialErrors >= 1", func() bool { return p.Stats().DialErrors >= 1 })
}
