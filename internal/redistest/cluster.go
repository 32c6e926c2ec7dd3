package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterWait bounds how long WaitOK waits for every node to report
// cluster_state:ok.
const clusterWait = 30 * time.Second

// ClusterOptions configures a spawned Redis Cluster.
type ClusterOptions struct {
	// Masters is the number of master nodes, each owning an equal share of
	// the 16384 hash slots. Zero means 3, the minimum redis-cli accepts.
	Masters int
	// AppendOnly gives every node appendonly with fsync always, so that
	// RestartNode keeps every acknowledged write.
	AppendOnly bool
	// Replicas is the number of replicas per master: 0 (the default) or 1.
	// Only a cluster with replicas supports Failover and KillMaster.
	Replicas int
}

// Cluster is a Redis Cluster, of masters only or with one replica per
// master, each node a redis-server owned by a test and stopped when the test
// ends. It is not safe for concurrent use, and its methods must be called
// from the test's goroutine since they may call t.Fatal.
//
// The hash slots are split into Masters contiguous ranges; range i is the
// i-th by slot number (see Slots). Each range is served by one pair of nodes
// for the cluster's life: Nodes[i], its master at start, and with Replicas
// Nodes[Masters+i], its replica. Failover and KillMaster swap a pair's
// roles; Master and Replica report the current ones.
type Cluster struct {
	// Nodes are the masters at start, Nodes[i] owning range i, followed
	// by their replicas in the same order.
	Nodes []*Server

	t       testing.TB
	masters int
	ranges  [][2]int              // first and last slot of each range
	clients []*redis.Client       // one per node, in the order of Nodes
	elected map[*Server]time.Time // when Failover or KillMaster last saw a node promoted
}

// StartCluster spawns opts.Masters cluster-enabled redis-servers (and with
// Replicas as many more), joins them with redis-cli --cluster create and
// waits until every node reports cluster_state:ok (and every replica is
// connected to its master). It skips or fails (see Unavailable) when
// redis-server or redis-cli is not on PATH.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		Unavailable(t, "redis-cli not on PATH (needed to create a cluster)")
	}
	n := opts.Masters
	if n == 0 {
		n = 3
	}
	if n < 3 {
		t.Fatalf("redistest: ClusterOptions.Masters = %d; a Redis Cluster needs at least 3", n)
	}
	if opts.Replicas < 0 || opts.Replicas > 1 {
		t.Fatalf("redistest: ClusterOptions.Replicas = %d; want 0 or 1", opts.Replicas)
	}
	c := &Cluster{t: t, masters: n}
	for i := 0; i < n*(1+opts.Replicas); i++ {
		args := []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", // relative to the node's own Dir
			"--cluster-node-timeout", "2000",
			// The bus port defaults to port+10000, which overflows for
			// ephemeral ports above 55535; a free port of its own cannot.
			"--cluster-port", strconv.Itoa(FreePort(t)),
		}
		if opts.Replicas > 0 {
			args = append(args, replicaArgs()...)
		}
		c.Nodes = append(c.Nodes, Start(t, Options{AppendOnly: opts.AppendOnly, Args: args}))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create %s: %v\n%s", strings.Join(c.Addrs(), " "), err, tail(string(out), 2000))
	}
	c.WaitOK()
	c.mapRanges(t)
	return c
}

// Addrs returns the host:port of every node, in the order of Nodes.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	return addrs
}

// Client returns a new cluster client seeded with every node, closed when
// the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// RestartNode stops node i and starts it again on the same port and
// directory, so that it reloads its nodes.conf and rejoins the cluster owning
// the same slots (with its data only under AppendOnly), then waits as WaitOK
// does.
func (c *Cluster) RestartNode(i int) {
	c.t.Helper()
	if i < 0 || i >= len(c.Nodes) {
		c.t.Fatalf("redistest: RestartNode(%d) on a cluster of %d nodes", i, len(c.Nodes))
	}
	c.Nodes[i].Stop()
	c.Nodes[i].Restart()
	c.WaitOK()
}

// WaitOK waits until CLUSTER INFO on every node reports cluster_state:ok and
// knows every node, and fails the test if that takes longer than 30 seconds.
func (c *Cluster) WaitOK() {
	c.t.Helper()
	clients := make([]*redis.Client, len(c.Nodes))
	for i, s := range c.Nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		defer clients[i].Close()
	}
	deadline := time.Now().Add(clusterWait)
	for {
		err := c.checkOK(clients)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redistest: cluster not ok within %v: %v", clusterWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOK returns why the cluster, as seen by each node in turn, is not yet
// ok, or nil when every node agrees it is.
func (c *Cluster) checkOK(clients []*redis.Client) error {
	for i, rc := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := rc.ClusterInfo(ctx).Result()
		cancel()
		if err != nil {
			return fmt.Errorf("node %d (%s): CLUSTER INFO: %w", i, c.Nodes[i].Addr, err)
		}
		fields := parseInfo(info)
		if st := fields["cluster_state"]; st != "ok" {
			return fmt.Errorf("node %d (%s): cluster_state:%s", i, c.Nodes[i].Addr, st)
		}
		if kn := fields["cluster_known_nodes"]; kn != strconv.Itoa(len(c.Nodes)) {
			return fmt.Errorf("node %d (%s): cluster_known_nodes:%s; want %d", i, c.Nodes[i].Addr, kn, len(c.Nodes))
		}
	}
	return nil
}

// parseInfo splits the "field:value" lines of an INFO-style reply.
func parseInfo(info string) map[string]string {
	fields := make(map[string]string)
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	return fields
}
