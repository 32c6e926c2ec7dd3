package redistest

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestClusterFailsOverThreeTimes fails slot range 1 over three times in a
// row, either way, while a cluster client writes throughout: its pair swaps
// roles each time, the other ranges keep their masters, and the client keeps
// working after each failover.
func TestClusterFailsOverThreeTimes(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(*Cluster, testing.TB, int)
	}{
		{"Failover", (*Cluster).Failover},
		{"KillMaster", (*Cluster).KillMaster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := StartCluster(t, ClusterOptions{Replicas: 1})
			if got := len(c.Nodes); got != 6 {
				t.Fatalf("len(Nodes) = %d; want 6", got)
			}
			checkClusterRoles(t, c, 1, c.Nodes[1])
			w := startWriter(t, c.Client(t))
			w.progress(t, 20)
			for k := 1; k <= 3; k++ {
				start := time.Now()
				tc.fail(c, t, 1)
				t.Logf("%s %d took %v", tc.name, k, time.Since(start).Round(time.Millisecond))
				want := c.Nodes[1]
				if k%2 == 1 {
					want = c.Nodes[4]
				}
				checkClusterRoles(t, c, 1, want)
				w.progress(t, 20)
			}
			w.halt(t)
		})
	}
}

// checkClusterRoles checks that master serves range i and its pair partner
// replicates it, and that every other range is served by its master at start.
func checkClusterRoles(t *testing.T, c *Cluster, i int, master *Server) {
	t.Helper()
	for j := range c.masters {
		want, wantReplica := c.Nodes[j], c.Nodes[c.masters+j]
		if j == i {
			want, wantReplica = master, c.partner(master)
		}
		if got := c.Master(t, j); got != want {
			t.Fatalf("Master(%d) = %s; want %s", j, got.Addr, want.Addr)
		}
		if got := c.Replica(t, j); got != wantReplica {
			t.Fatalf("Replica(%d) = %s; want %s", j, got.Addr, wantReplica.Addr)
		}
		for s, role := range map[*Server]string{want: "master", wantReplica: "slave"} {
			if got, err := roleOf(context.Background(), c.client(s)); err != nil || got != role {
				t.Fatalf("ROLE of %s = %q, %v; want %q", s.Addr, got, err, role)
			}
		}
	}
	if first, last := c.Slots(0); first != 0 || last <= first {
		t.Fatalf("Slots(0) = %d, %d; want 0, > 0", first, last)
	}
	for j := range c.masters {
		first, last := c.Slots(j)
		if a, b := c.RangeOf(first), c.RangeOf(last); a != j || b != j {
			t.Fatalf("RangeOf(%d), RangeOf(%d) = %d, %d; want %d", first, last, a, b, j)
		}
	}
}

func TestStartClusterRejectsBadReplicas(t *testing.T) {
	for _, replicas := range []int{-1, 2} {
		t.Run(strconv.Itoa(replicas), func(t *testing.T) {
			ft := &fatalRecorder{TB: t}
			func() {
				defer func() { recover() }() // fatalRecorder stops the goroutine with a panic
				StartCluster(ft, ClusterOptions{Replicas: replicas})
			}()
			if !ft.failed {
				t.Fatalf("StartCluster(Replicas: %d) did not fail", replicas)
			}
		})
	}
}
