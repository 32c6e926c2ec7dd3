package redistest

import (
	"context"
	"testing"
	"time"
)

// TestSentinelFailsOverThreeTimes fails the master over three times in a
// row, either way, while a client of the group writes throughout: roles
// swap each time and the client keeps working after each failover.
func TestSentinelFailsOverThreeTimes(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(*SentinelGroup, testing.TB)
	}{
		{"Failover", (*SentinelGroup).Failover},
		{"KillMaster", (*SentinelGroup).KillMaster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := StartSentinel(t, SentinelOptions{})
			checkSentinelRoles(t, g, 0)
			w := startWriter(t, g.Client(t))
			w.progress(t, 20)
			for k := 1; k <= 3; k++ {
				start := time.Now()
				tc.fail(g, t)
				t.Logf("%s %d took %v", tc.name, k, time.Since(start).Round(time.Millisecond))
				checkSentinelRoles(t, g, k%2)
				w.progress(t, 20)
			}
			w.halt(t)
		})
	}
}

// checkSentinelRoles checks that the sentinels name Nodes[master] as master
// and that the nodes' ROLE agrees.
func checkSentinelRoles(t *testing.T, g *SentinelGroup, master int) {
	t.Helper()
	if got, want := g.MasterAddr(t), g.Nodes[master].Addr; got != want {
		t.Fatalf("MasterAddr = %s; want %s (Nodes[%d])", got, want, master)
	}
	if got := g.Master(t); got != g.Nodes[master] {
		t.Fatalf("Master = %s; want Nodes[%d]", got.Addr, master)
	}
	if got := g.Replica(t); got != g.Nodes[1-master] {
		t.Fatalf("Replica = %s; want Nodes[%d]", got.Addr, 1-master)
	}
	for i, want := range map[int]string{master: "master", 1 - master: "slave"} {
		role, err := roleOf(context.Background(), g.nodes[i])
		if err != nil || role != want {
			t.Fatalf("ROLE of Nodes[%d] = %q, %v; want %q", i, role, err, want)
		}
	}
}

func TestStartSentinelFailsWithoutRedisSentinelWhenRequired(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("REQUIRE_REDIS", "1")
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { recover() }() // fatalRecorder stops the goroutine with a panic
		StartSentinel(ft, SentinelOptions{})
	}()
	if !ft.failed {
		t.Fatal("StartSentinel without redis-sentinel on PATH did not fail under REQUIRE_REDIS=1")
	}
}
