package target

import (
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
)

func TestOpenSpawnsOrFakes(t *testing.T) {
	ctx := context.Background()
	tg, err := Open(ctx, "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	_, lookErr := exec.LookPath("redis-server")
	if want := map[bool]Kind{true: Spawned, false: Fake}[lookErr == nil]; tg.Kind != want {
		t.Fatalf("Open(\"\").Kind = %s; want %s", tg.Kind, want)
	}
	if tg.Kind == Spawned && !tg.Lua {
		t.Error("spawned redis-server reports no Lua")
	}
	c := tg.Client(2)
	defer c.Close()
	if err := c.Incr(ctx, "k").Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tg.String(), tg.Addr) {
		t.Errorf("String() = %q; want it to name %s", tg.String(), tg.Addr)
	}
}

// TestFakeFallback forces the fallback by hiding redis-server from PATH.
func TestFakeFallback(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var log strings.Builder
	tg, err := Open(context.Background(), "", &log)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if tg.Kind != Fake || tg.Lua {
		t.Fatalf("Kind, Lua = %s, %v; want fake, false", tg.Kind, tg.Lua)
	}
	if !strings.Contains(tg.String(), "FAKE") || !strings.Contains(log.String(), "fake") {
		t.Fatalf("no banner saying fake: %q / %q", tg.String(), log.String())
	}
}
