package fakeredis_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/fakeredis"
)

func start(t *testing.T) *redis.Client {
	t.Helper()
	s, err := fakeredis.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStrings(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	if n, err := c.Incr(ctx, "k").Result(); n != 1 || err != nil {
		t.Fatalf("INCR k = %d, %v; want 1", n, err)
	}
	if n, err := c.IncrBy(ctx, "k", 41).Result(); n != 42 || err != nil {
		t.Fatalf("INCRBY k 41 = %d, %v; want 42", n, err)
	}
	if v, err := c.Get(ctx, "k").Result(); v != "42" || err != nil {
		t.Fatalf("GET k = %q, %v; want 42", v, err)
	}
	if _, err := c.Get(ctx, "missing").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET missing: err = %v; want redis.Nil", err)
	}
	c.Set(ctx, "s", "text", 0)
	if err := c.Incr(ctx, "s").Err(); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Fatalf("INCR on text: err = %v; want not an integer", err)
	}
	if ok, _ := c.SetNX(ctx, "lock", "a", time.Minute).Result(); !ok {
		t.Fatal("SET NX on a free key did not set")
	}
	if ok, _ := c.SetNX(ctx, "lock", "b", time.Minute).Result(); ok {
		t.Fatal("SET NX on a held key set it")
	}
	if ttl, _ := c.PTTL(ctx, "lock").Result(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL lock = %v; want in (0, 1m]", ttl)
	}
	if n, _ := c.Del(ctx, "lock", "k", "missing").Result(); n != 2 {
		t.Fatalf("DEL = %d; want 2", n)
	}
	if err := c.Eval(ctx, "return 1", nil).Err(); err == nil {
		t.Fatal("EVAL succeeded; the fake has no Lua")
	}
}

func TestLists(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	c.RPush(ctx, "q", "a", "b", "c")
	if v, _ := c.LPop(ctx, "q").Result(); v != "a" {
		t.Fatalf("LPOP = %q; want a", v)
	}
	if n, _ := c.LLen(ctx, "q").Result(); n != 2 {
		t.Fatalf("LLEN = %d; want 2", n)
	}
	if v, _ := c.RPop(ctx, "q").Result(); v != "c" {
		t.Fatalf("RPOP = %q; want c", v)
	}
}

// TestPipelineAndStats checks concurrent pipelines sum exactly and INFO
// commandstats counts every command.
func TestPipelineAndStats(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := c.Pipeline()
			for range 100 {
				p.IncrBy(ctx, "sum", 2)
			}
			if _, err := p.Exec(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if v, _ := c.Get(ctx, "sum").Int64(); v != 1600 {
		t.Fatalf("sum = %d; want 1600", v)
	}
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "cmdstat_incrby:calls=800,") {
		t.Fatalf("INFO commandstats lacks 800 INCRBY calls:\n%s", info)
	}
	stats, _ := c.Info(ctx, "stats", "commandstats").Result()
	if !strings.Contains(stats, "total_net_input_bytes:") || !strings.Contains(stats, "cmdstat_info:") {
		t.Fatalf("INFO stats lacks total_net_input_bytes:\n%s", stats)
	}
}
