package redistest

import (
	"context"
	"strconv"
	"testing"
)

func TestClusterSpreadsKeysAndKeepsThemAcrossRestart(t *testing.T) {
	c := StartCluster(t, ClusterOptions{AppendOnly: true})
	if got := len(c.Nodes); got != 3 {
		t.Fatalf("len(Nodes) = %d; want 3 (the default)", got)
	}
	ctx := context.Background()
	cc := c.Client(t)
	const keys = 1000
	key := func(i int) string { return "k:" + strconv.Itoa(i) }
	pipe := cc.Pipeline()
	for i := 0; i < keys; i++ {
		pipe.Set(ctx, key(i), i, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("SET %d keys: %v", keys, err)
	}

	for i, s := range c.Nodes {
		n, err := s.Client(t).DBSize(ctx).Result()
		if err != nil || n == 0 {
			t.Errorf("DBSIZE on node %d (%s) = %d, %v; want > 0", i, s.Addr, n, err)
		}
	}

	c.RestartNode(1)

	for i := 0; i < keys; i++ {
		got, err := cc.Get(ctx, key(i)).Int()
		if err != nil || got != i {
			t.Fatalf("GET %s after RestartNode(1) = %d, %v; want %d", key(i), got, err, i)
		}
	}
}

func TestStartClusterRejectsTooFewMasters(t *testing.T) {
	for _, masters := range []int{1, 2} {
		t.Run(strconv.Itoa(masters), func(t *testing.T) {
			ft := &fatalRecorder{TB: t}
			func() {
				defer func() { recover() }() // fatalRecorder stops the goroutine with a panic
				StartCluster(ft, ClusterOptions{Masters: masters})
			}()
			if !ft.failed {
				t.Fatalf("StartCluster(Masters: %d) did not fail", masters)
			}
		})
	}
}

// fatalRecorder records a Fatalf instead of ending the test, so a test can
// check that a helper rejects bad input.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.failed = true
	panic("fatal")
}
