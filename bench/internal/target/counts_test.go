package target_test

import (
	"context"
	"io"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/bench/internal/target"
	"github.com/abacus-go/abacus/internal/redisinfo"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestServerCounts checks the accounting against a real Redis and the
// in-process fallback of package target: 100 INCRs show as 100 incr
// calls, and RequestBytes matches the server's byte count.
func TestServerCounts(t *testing.T) {
	real := redistest.Client(t)
	t.Setenv("PATH", t.TempDir()) // no redis-server to spawn: in-process
	inProcess, err := target.Open(context.Background(), "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer inProcess.Close()
	clients := map[string]redis.UniversalClient{
		"in-process": inProcess.Client(1),
		"real":       real,
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := redistest.Prefix(t) + "k"
			c.Ping(ctx) // connect before the first snapshot
			before, err := redisinfo.Read(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			for range 100 {
				c.Incr(ctx, key)
			}
			after, err := redisinfo.Read(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			d := after.Sub(before)
			if d.Calls["incr"] != 100 {
				t.Errorf("incr calls = %d; want 100", d.Calls["incr"])
			}
			want := 100*redisinfo.RequestBytes("INCR", key) + redisinfo.RequestBytes("info", "stats", "commandstats")
			if d.NetInput != want {
				t.Errorf("net input = %d bytes; want %d", d.NetInput, want)
			}
		})
	}
}
