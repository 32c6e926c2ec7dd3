package target

import (
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
)

func TestOpenSpawnsOrRunsInProcess(t *testing.T) {
	ctx := context.Background()
	tg, err := Open(ctx, "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	_, lookErr := exec.LookPath("redis-server")
	if want := map[bool]Kind{true: Spawned, false: InProcess}[lookErr == nil]; tg.Kind != want {
		t.Fatalf("Open(\"\").Kind = %s; want %s", tg.Kind, want)
	}
	if !tg.Lua {
		t.Errorf("%s Redis reports no Lua", tg.Kind)
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

// TestInProcessFallback forces the fallback by hiding redis-server from
// PATH.
func TestInProcessFallback(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var log strings.Builder
	tg, err := Open(context.Background(), "", &log)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if tg.Kind != InProcess || !tg.Lua || !strings.HasPrefix(tg.Version, "miniredis") {
		t.Fatalf("Kind, Lua, Version = %s, %v, %q; want in-process, true, miniredis*", tg.Kind, tg.Lua, tg.Version)
	}
	if !strings.Contains(tg.String(), "IN-PROCESS") || !strings.Contains(log.String(), "in this process") {
		t.Fatalf("no banner saying in-process: %q / %q", tg.String(), log.String())
	}
}
