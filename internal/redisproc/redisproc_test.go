package redisproc_test

import (
	"context"
	"os/exec"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redisproc"
	"github.com/abacus-go/abacus/internal/redistest"
)

func TestStartRequiresDir(t *testing.T) {
	if _, err := redisproc.Start(redisproc.Options{}); err == nil {
		t.Fatal("Start without Dir succeeded")
	}
}

func TestStartSentinelRequiresConfig(t *testing.T) {
	if _, err := redisproc.Start(redisproc.Options{Dir: t.TempDir(), Sentinel: true}); err == nil {
		t.Fatal("Start with Sentinel but no Config succeeded")
	}
}

// TestKillLosesWhatStopKeeps: with AppendOnly, Stop then Restart keeps the
// data; without persistence, Kill then Restart starts empty.
func TestKillLosesWhatStopKeeps(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		redistest.Unavailable(t, "redis-server not on PATH")
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		appendOnly bool
		end        func(*redisproc.Server)
		want       int64
	}{
		{"appendonly+Stop", true, (*redisproc.Server).Stop, 1},
		{"no persistence+Kill", false, (*redisproc.Server).Kill, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisproc.Start(redisproc.Options{Dir: t.TempDir(), AppendOnly: tc.appendOnly})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Kill()
			c := redis.NewClient(&redis.Options{Addr: s.Addr})
			defer c.Close()
			if err := c.Incr(ctx, "k").Err(); err != nil {
				t.Fatal(err)
			}
			tc.end(s)
			if err := s.Restart(); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Get(ctx, "k").Int64(); got != tc.want {
				t.Fatalf("k after restart = %d; want %d", got, tc.want)
			}
		})
	}
}
