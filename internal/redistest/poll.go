package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// failoverWait bounds each wait of a failover fixture (Sentinel or Cluster):
// a hang guard, tens of times what a failover takes on an idle machine.
const failoverWait = 45 * time.Second

// waitUntil polls check until it returns nil, failing t with the last error
// if that takes longer than failoverWait.
func waitUntil(t testing.TB, what string, check func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(failoverWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: still waiting for %s after %v: %v", what, failoverWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nodeClient returns a client for one node that never retries (a poll
// retries instead), closed when the test ends.
func nodeClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: addr, MaxRetries: -1, PoolSize: 2,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// replication is what INFO replication says of a node.
type replication struct {
	role       string // "master" or "slave"
	masterPort int    // of the node replicated from; 0 on a master
	linkUp     bool   // master_link_status:up
}

func replicationOf(ctx context.Context, c *redis.Client) (replication, error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return replication{}, fmt.Errorf("%s: INFO replication: %w", c.Options().Addr, err)
	}
	f := parseInfo(info)
	r := replication{role: f["role"], linkUp: f["master_link_status"] == "up"}
	r.masterPort, _ = strconv.Atoi(f["master_port"])
	return r, nil
}

// roleOf returns the first element of ROLE: "master", "slave" or "sentinel".
func roleOf(ctx context.Context, c *redis.Client) (string, error) {
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", fmt.Errorf("%s: ROLE: %w", c.Options().Addr, err)
	}
	if len(v) == 0 {
		return "", fmt.Errorf("%s: empty ROLE reply", c.Options().Addr)
	}
	role, _ := v[0].(string)
	return role, nil
}

// waitReplicaOf polls until the node behind c reports, in ROLE and INFO
// replication, that it replicates the node at masterPort with its link up.
func waitReplicaOf(t testing.TB, c *redis.Client, masterPort int) {
	t.Helper()
	addr := c.Options().Addr
	waitUntil(t, addr+" to be a connected replica of port "+strconv.Itoa(masterPort), func(ctx context.Context) error {
		role, err := roleOf(ctx, c)
		if err != nil {
			return err
		}
		r, err := replicationOf(ctx, c)
		if err != nil {
			return err
		}
		if role != "slave" || r.masterPort != masterPort || !r.linkUp {
			return fmt.Errorf("%s: ROLE %s, master_port:%d, link up %v", addr, role, r.masterPort, r.linkUp)
		}
		return nil
	})
}

// waitMaster polls until the node behind c reports ROLE master.
func waitMaster(t testing.TB, c *redis.Client) {
	t.Helper()
	addr := c.Options().Addr
	waitUntil(t, addr+" to be master", func(ctx context.Context) error {
		role, err := roleOf(ctx, c)
		if err == nil && role != "master" {
			err = fmt.Errorf("%s: ROLE %s", addr, role)
		}
		return err
	})
}

// logOnFailure logs the end of each server's log if t has failed by the
// time it ends, since the servers' directories go with it.
func logOnFailure(t testing.TB, servers ...*Server) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, s := range servers {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			t.Logf("%s redis.log:\n%s", s.Addr, tail(string(log), 3000))
		}
	})
}
