package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redisproc"
)

// SentinelMaster is the name under which a SentinelGroup's sentinels
// monitor its master.
const SentinelMaster = "abacus"

// Sentinel timings: a master unreachable for downAfter is subjectively down,
// and a sentinel starts no new failover of it within twice failoverTimeout of
// the last one, so a killed master is replaced within a few seconds.
const (
	sentinelDownAfter       = 1000 // ms
	sentinelFailoverTimeout = 3000 // ms
)

// SentinelOptions configures a Sentinel group (StartSentinel).
type SentinelOptions struct {
	// AppendOnly gives both data nodes appendonly with fsync always.
	AppendOnly bool
	// Args are extra redis-server arguments for both data nodes.
	Args []string
}

// SentinelGroup is a master, its replica and three sentinels (quorum 2)
// monitoring the master as SentinelMaster, each a process owned by a test and
// killed when the test ends. It is not safe for concurrent use, and its
// methods must be called from the test's goroutine since they may call
// t.Fatal.
type SentinelGroup struct {
	// Nodes are the two data nodes. Nodes[0] is the master at start and
	// Nodes[1] its replica; Failover and KillMaster swap the roles.
	Nodes []*Server
	// Sentinels are the three sentinels.
	Sentinels []*Server

	nodes     []*redis.Client // one per Nodes
	sentinels []*redis.SentinelClient
}

// StartSentinel spawns the data nodes and the sentinels, and waits until
// the replica is connected and every sentinel names Nodes[0] as master and
// knows the replica and the two other sentinels. It skips or fails (see
// Unavailable) when redis-server or redis-sentinel is not on PATH.
func StartSentinel(t testing.TB, opts SentinelOptions) *SentinelGroup {
	t.Helper()
	if _, err := exec.LookPath("redis-sentinel"); err != nil {
		Unavailable(t, "redis-sentinel not on PATH (Debian: apt-get install redis-sentinel)")
	}
	g := &SentinelGroup{}
	// A full resync (a demoted master that took writes after the promotion)
	// would otherwise wait 5 s for more replicas to share it.
	args := append([]string{"--repl-diskless-sync-delay", "0"}, opts.Args...)
	master := Start(t, Options{AppendOnly: opts.AppendOnly, Args: args})
	replicaArgs := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}, args...)
	replica := Start(t, Options{AppendOnly: opts.AppendOnly, Args: replicaArgs})
	g.Nodes = []*Server{master, replica}
	for _, s := range g.Nodes {
		g.nodes = append(g.nodes, nodeClient(t, s.Addr))
	}
	// A sentinel learns the replicas from the master's INFO, which it
	// refreshes only every 10 s: connect the replica first.
	waitReplicaOf(t, g.nodes[1], master.Port)

	for range 3 {
		s := startSentinel(t, master.Port)
		g.Sentinels = append(g.Sentinels, s)
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		t.Cleanup(func() { c.Close() })
		g.sentinels = append(g.sentinels, c)
	}
	logOnFailure(t, append(g.Nodes, g.Sentinels...)...)
	g.waitAgreed(t, "sentinels to agree at start", 0, true)
	return g
}

// startSentinel runs one redis-sentinel monitoring the master at port, with
// its own configuration file, since Sentinel rewrites it.
func startSentinel(t testing.TB, masterPort int) *Server {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
		"sentinel down-after-milliseconds %[1]s %[3]d\n"+
		"sentinel failover-timeout %[1]s %[4]d\n"+
		"sentinel parallel-syncs %[1]s 1\n",
		SentinelMaster, masterPort, sentinelDownAfter, sentinelFailoverTimeout)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	proc, err := redisproc.Start(redisproc.Options{Dir: dir, Config: conf, Sentinel: true})
	if err != nil {
		Unavailable(t, "%v", err)
	}
	t.Cleanup(proc.Kill)
	return &Server{Addr: proc.Addr, Port: proc.Port, Dir: dir, t: t, proc: proc}
}

// SentinelAddrs returns the host:port of every sentinel.
func (g *SentinelGroup) SentinelAddrs() []string {
	addrs := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		addrs[i] = s.Addr
	}
	return addrs
}

// FailoverOptions returns new options for redis.NewFailoverClient naming the
// group's master and sentinels, for a test to adjust before use.
func (g *SentinelGroup) FailoverOptions() *redis.FailoverOptions {
	return &redis.FailoverOptions{MasterName: SentinelMaster, SentinelAddrs: g.SentinelAddrs()}
}

// Client returns a new failover client for the group (FailoverOptions
// unchanged), closed when the test ends.
func (g *SentinelGroup) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewFailoverClient(g.FailoverOptions())
	t.Cleanup(func() { c.Close() })
	return c
}

// MasterAddr returns the master's host:port as the first sentinel that
// answers names it.
func (g *SentinelGroup) MasterAddr(t testing.TB) string {
	t.Helper()
	var err error
	for _, c := range g.sentinels {
		var a []string
		a, err = c.GetMasterAddrByName(context.Background(), SentinelMaster).Result()
		if err == nil {
			return net.JoinHostPort(a[0], a[1])
		}
	}
	t.Fatalf("redistest: no sentinel names the master: %v", err)
	return ""
}

// Master returns the data node that is master as MasterAddr reports it.
func (g *SentinelGroup) Master(t testing.TB) *Server {
	t.Helper()
	return g.Nodes[g.master(t)]
}

// Replica returns the data node that is not Master.
func (g *SentinelGroup) Replica(t testing.TB) *Server {
	t.Helper()
	return g.Nodes[1-g.master(t)]
}

// master returns the index in Nodes of the master named by MasterAddr.
func (g *SentinelGroup) master(t testing.TB) int {
	t.Helper()
	addr := g.MasterAddr(t)
	for i, s := range g.Nodes {
		if s.Addr == addr {
			return i
		}
	}
	t.Fatalf("redistest: sentinels name %s as master, which is neither data node", addr)
	return 0
}

// Failover has a sentinel fail the master over to its replica (SENTINEL
// FAILOVER) and waits until the replica reports ROLE master, every sentinel
// names it and sees the old master as its replica, and the old master
// replicates from it with its link up. Clients may see errors meanwhile.
func (g *SentinelGroup) Failover(t testing.TB) {
	t.Helper()
	old := g.master(t)
	waitUntil(t, "SENTINEL FAILOVER to be accepted", func(ctx context.Context) error {
		var err error
		for _, c := range g.sentinels {
			// INPROG or NOGOODSLAVE while a sentinel still settles the
			// previous failover: the poll retries.
			if err = c.Failover(ctx, SentinelMaster).Err(); err == nil {
				return nil
			}
		}
		return err
	})
	g.waitPromoted(t, 1-old)
}

// KillMaster ends the master with SIGKILL, waits until the sentinels have
// promoted the replica and agree on it, then restarts the killed node on
// its port and directory as a replica of the new master and waits as
// Failover does. Whatever the killed master had not replicated is lost.
func (g *SentinelGroup) KillMaster(t testing.TB) {
	t.Helper()
	old := g.master(t)
	g.Nodes[old].Kill()
	waitMaster(t, g.nodes[1-old])
	g.waitAgreed(t, "sentinels to agree on the promoted replica", 1-old, false)
	g.Nodes[old].Restart()
	g.waitPromoted(t, 1-old)
}

// waitPromoted waits until Nodes[i] is master and the other node its
// connected replica, as they and every sentinel see it.
func (g *SentinelGroup) waitPromoted(t testing.TB, i int) {
	t.Helper()
	waitMaster(t, g.nodes[i])
	// Sentinel reconfigures a demoted or restarted master only after it
	// has reported the wrong role for 8 s (4 hello periods); issuing the
	// same REPLICAOF now keeps failovers short without changing their end.
	waitUntil(t, "REPLICAOF on the old master", func(ctx context.Context) error {
		return g.nodes[1-i].ReplicaOf(ctx, "127.0.0.1", strconv.Itoa(g.Nodes[i].Port)).Err()
	})
	waitReplicaOf(t, g.nodes[1-i], g.Nodes[i].Port)
	g.waitAgreed(t, "sentinels to agree after the failover", i, true)
}

// waitAgreed waits until every sentinel names Nodes[master] as master, has
// no failover of it in progress, and knows the two other sentinels; with
// replica, also until each lists the other node as a replica it reaches.
func (g *SentinelGroup) waitAgreed(t testing.TB, what string, master int, replica bool) {
	t.Helper()
	m, r := g.Nodes[master], g.Nodes[1-master]
	waitUntil(t, what, func(ctx context.Context) error {
		for i, c := range g.sentinels {
			name := fmt.Sprintf("sentinel %d (%s)", i, g.Sentinels[i].Addr)
			a, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if addr := net.JoinHostPort(a[0], a[1]); addr != m.Addr {
				return fmt.Errorf("%s names master %s; want %s", name, addr, m.Addr)
			}
			f, err := c.Master(ctx, SentinelMaster).Result()
			if err != nil {
				return fmt.Errorf("%s: SENTINEL MASTER: %w", name, err)
			}
			if f["flags"] != "master" { // not down, no failover in progress
				return fmt.Errorf("%s: master flags %q", name, f["flags"])
			}
			if n := f["num-other-sentinels"]; n != strconv.Itoa(len(g.Sentinels)-1) {
				return fmt.Errorf("%s: num-other-sentinels %s; want %d", name, n, len(g.Sentinels)-1)
			}
			if !replica {
				continue
			}
			rs, err := c.Replicas(ctx, SentinelMaster).Result()
			if err != nil {
				return fmt.Errorf("%s: SENTINEL REPLICAS: %w", name, err)
			}
			if err := hasReplica(rs, r.Port); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	})
}

// hasReplica returns nil if the SENTINEL REPLICAS reply rs lists the node at
// port as a replica that is neither down nor disconnected.
func hasReplica(rs []map[string]string, port int) error {
	for _, f := range rs {
		if f["port"] == strconv.Itoa(port) {
			if f["flags"] != "slave" {
				return fmt.Errorf("replica on port %d has flags %q", port, f["flags"])
			}
			return nil
		}
	}
	return fmt.Errorf("no replica on port %d among %d", port, len(rs))
}
