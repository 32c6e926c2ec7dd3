package redistest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// replicaNodeTimeout is the cluster-node-timeout of a cluster with
// replicas: a master unreachable for that long is failing, and its replica
// takes over about a second later.
const replicaNodeTimeout = 1000 * time.Millisecond

// electionHoldOff is how long after winning a failover election a node must
// wait before it can take part in another. Redis 7.0 keeps a replica's
// election state for 2 node timeouts (at least 2 s): a replica asked to
// take over again within that time reuses the old election's votes and
// claims the slots with its stale config epoch, which every other node
// ignores; for 2 node timeouts more it starts no election at all. So
// Failover and KillMaster wait until the node to be promoted last won an
// election (as far as they know) 4 node timeouts ago.
const electionHoldOff = 4*max(replicaNodeTimeout, time.Second) + 250*time.Millisecond

// replicaArgs are the extra redis-server arguments of every node of a
// cluster with replicas; they override the cluster's defaults.
func replicaArgs() []string {
	return []string{
		"--cluster-node-timeout", strconv.Itoa(int(replicaNodeTimeout.Milliseconds())),
		// Promote a replica however long it was cut off from its master
		// (by default it refuses after 10 node timeouts).
		"--cluster-replica-validity-factor", "0",
		// Keep the pairs fixed: no replica moves to another master.
		"--cluster-allow-replica-migration", "no",
		// A restarted master resyncs in full; do not wait 5 s for more
		// replicas to share the transfer.
		"--repl-diskless-sync-delay", "0",
	}
}

// mapRanges learns the slot ranges and pairs redis-cli made, puts Nodes in
// the documented order and, with replicas, waits until each is connected.
func (c *Cluster) mapRanges(t testing.TB) {
	t.Helper()
	replicas := len(c.Nodes) > c.masters
	var masters, slaves []nodeLine
	rc := nodeClient(t, c.Nodes[0].Addr)
	// redis-cli returns before every node knows every replica's master.
	waitUntil(t, "the cluster's topology", func(ctx context.Context) error {
		lines, err := clusterNodes(ctx, rc)
		if err != nil {
			return err
		}
		masters, slaves = masters[:0], slaves[:0]
		for _, l := range lines {
			switch {
			case l.has("master") && len(l.slots) == 1:
				masters = append(masters, l)
			case l.has("slave") && l.master != "-":
				slaves = append(slaves, l)
			default:
				return fmt.Errorf("%s: CLUSTER NODES line %q: want a master of one slot range or a replica", c.Nodes[0].Addr, l.text)
			}
		}
		if len(masters) != c.masters || len(masters)+len(slaves) != len(c.Nodes) {
			return fmt.Errorf("%d masters and %d replicas; want %d and %d", len(masters), len(slaves), c.masters, len(c.Nodes)-c.masters)
		}
		return nil
	})
	slices.SortFunc(masters, func(a, b nodeLine) int { return a.slots[0][0] - b.slots[0][0] })
	byPort := make(map[int]*Server)
	for _, s := range c.Nodes {
		byPort[s.Port] = s
	}
	nodes := make([]*Server, 0, len(c.Nodes))
	for _, m := range masters {
		nodes = append(nodes, byPort[m.port])
		c.ranges = append(c.ranges, m.slots[0])
	}
	if replicas {
		for _, m := range masters {
			i := slices.IndexFunc(slaves, func(l nodeLine) bool { return l.master == m.id })
			if i < 0 {
				t.Fatalf("redistest: master on port %d has no replica", m.port)
			}
			nodes = append(nodes, byPort[slaves[i].port])
		}
	}
	if slices.Contains(nodes, nil) || len(nodes) != len(c.Nodes) {
		t.Fatalf("redistest: CLUSTER NODES names nodes not started here")
	}
	c.Nodes = nodes
	c.elected = make(map[*Server]time.Time)
	if replicas {
		logOnFailure(t, c.Nodes...)
	}
	for _, s := range c.Nodes {
		c.clients = append(c.clients, nodeClient(t, s.Addr))
	}
	if replicas {
		c.waitSettled(t, -1, nil)
	}
}

// Slots returns the first and last hash slot of range i.
func (c *Cluster) Slots(i int) (first, last int) {
	c.t.Helper()
	c.checkRange(c.t, i)
	return c.ranges[i][0], c.ranges[i][1]
}

// RangeOf returns the range that holds hash slot (see Slots).
func (c *Cluster) RangeOf(slot int) int {
	c.t.Helper()
	for i, r := range c.ranges {
		if r[0] <= slot && slot <= r[1] {
			return i
		}
	}
	c.t.Fatalf("redistest: no slot range holds slot %d", slot)
	return -1
}

// Master returns the node serving range i, as CLUSTER NODES on the first
// node that answers reports it.
func (c *Cluster) Master(t testing.TB, i int) *Server {
	t.Helper()
	c.checkRange(t, i)
	var err error
	for k := range c.Nodes {
		var owners []*Server
		if owners, err = c.owners(context.Background(), k); err == nil {
			return owners[i]
		}
	}
	t.Fatalf("redistest: master of slot range %d: %v", i, err)
	return nil
}

// Replica returns the other node of range i's pair, the replica of Master
// (once a Failover or KillMaster has returned). It requires Replicas.
func (c *Cluster) Replica(t testing.TB, i int) *Server {
	t.Helper()
	c.needReplicas(t, "Replica")
	return c.partner(c.Master(t, i))
}

// Failover has the replica of range i's master take over with CLUSTER
// FAILOVER (a manual failover: no acknowledged write is lost). It returns
// once every node reports cluster_state:ok and, in CLUSTER NODES, the
// replica as range i's master and the old master as its replica, and the
// old master reports its replication link up; every other pair is then
// likewise settled. Clients may see errors meanwhile. It requires Replicas.
func (c *Cluster) Failover(t testing.TB, i int) {
	t.Helper()
	c.needReplicas(t, "Failover")
	c.checkRange(t, i)
	r := c.Replica(t, i)
	rc := c.client(r)
	c.holdOff(r)
	var issued time.Time
	c.waitSettledFunc(t, fmt.Sprintf("%s to take over slot range %d", r.Addr, i), i, r, nil, func(ctx context.Context) error {
		// A manual failover not completed within 5 s is abandoned: ask
		// again once the node is a replica (a stale win makes it a master
		// of nothing for a moment).
		if time.Since(issued) < 6*time.Second {
			return nil
		}
		if role, err := roleOf(ctx, rc); err != nil || role != "slave" {
			return err
		}
		if err := rc.ClusterFailover(ctx).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER FAILOVER: %w", r.Addr, err)
		}
		issued = time.Now()
		return nil
	})
	c.elected[r] = time.Now()
}

// KillMaster ends range i's master with SIGKILL and waits until every other
// node reports cluster_state:ok and, in CLUSTER NODES, the replica as range
// i's master. It then restarts the killed node on its port and directory,
// where it rejoins as the replica of the new master, and waits as Failover
// does. Whatever the killed master had not replicated is lost. It requires
// Replicas.
func (c *Cluster) KillMaster(t testing.TB, i int) {
	t.Helper()
	c.needReplicas(t, "KillMaster")
	c.checkRange(t, i)
	m := c.Master(t, i)
	r := c.partner(m)
	c.holdOff(r)
	m.Kill()
	c.waitSettledFunc(t, fmt.Sprintf("%s to replace killed %s for slot range %d", r.Addr, m.Addr, i), i, r, m, nil)
	c.elected[r] = time.Now()
	m.Restart()
	c.waitSettled(t, i, r)
}

// holdOff sleeps until s last won an election electionHoldOff ago.
func (c *Cluster) holdOff(s *Server) {
	time.Sleep(time.Until(c.elected[s].Add(electionHoldOff)))
}

// waitSettled waits until every node reports cluster_state:ok, knows every
// node and agrees on which node serves each range (want serving range i,
// unless want is nil) and that the other node of each pair is its replica,
// and until that replica reports its replication link up.
func (c *Cluster) waitSettled(t testing.TB, i int, want *Server) {
	t.Helper()
	c.waitSettledFunc(t, "the cluster to settle", i, want, nil, nil)
}

// waitSettledFunc is waitSettled leaving out the node down (unless nil), which
// neither reports nor is checked for being a connected replica, and calling
// poke (unless nil) before each check.
func (c *Cluster) waitSettledFunc(t testing.TB, what string, i int, want, down *Server, poke func(context.Context) error) {
	t.Helper()
	waitUntil(t, what, func(ctx context.Context) error {
		if poke != nil {
			if err := poke(ctx); err != nil {
				return err
			}
		}
		return c.settled(ctx, i, want, down)
	})
}

// settled returns nil if the cluster is as waitSettledFunc waits for it to be.
func (c *Cluster) settled(ctx context.Context, i int, want, down *Server) error {
	var first []*Server
	for k, s := range c.Nodes {
		if s == down {
			continue
		}
		if err := c.stateOK(ctx, k); err != nil {
			return err
		}
		lines, err := clusterNodes(ctx, c.clients[k])
		if err != nil {
			return err
		}
		owners, err := c.ownersIn(lines)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Addr, err)
		}
		if first == nil {
			first = owners
		}
		for j, m := range owners {
			if m != first[j] {
				return fmt.Errorf("%s says %s serves slot range %d; %s says %s", s.Addr, m.Addr, j, c.Nodes[0].Addr, first[j].Addr)
			}
			// A master ignores a manual failover request from a node it
			// does not know as its replica.
			if r := c.partner(m); r != down {
				if err := replicaIn(lines, r, m); err != nil {
					return fmt.Errorf("%s: %w", s.Addr, err)
				}
			}
		}
	}
	if want != nil && first[i] != want {
		return fmt.Errorf("%s serves slot range %d; want %s", first[i].Addr, i, want.Addr)
	}
	for _, m := range first {
		r := c.partner(m)
		if r == down {
			continue
		}
		rep, err := replicationOf(ctx, c.client(r))
		if err != nil {
			return err
		}
		if rep.role != "slave" || rep.masterPort != m.Port || !rep.linkUp {
			return fmt.Errorf("%s: role:%s master_port:%d link up %v; want a replica of %s", r.Addr, rep.role, rep.masterPort, rep.linkUp, m.Addr)
		}
	}
	return nil
}

// owners returns the node serving each range according to CLUSTER NODES on
// Nodes[k].
func (c *Cluster) owners(ctx context.Context, k int) ([]*Server, error) {
	lines, err := clusterNodes(ctx, c.clients[k])
	if err == nil {
		var owners []*Server
		if owners, err = c.ownersIn(lines); err == nil {
			return owners, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", c.Nodes[k].Addr, err)
}

// ownersIn returns the node serving each range according to lines.
func (c *Cluster) ownersIn(lines []nodeLine) ([]*Server, error) {
	owners := make([]*Server, len(c.ranges))
	for _, l := range lines {
		if !l.has("master") || l.has("fail") {
			continue
		}
		for i, r := range c.ranges {
			if slices.ContainsFunc(l.slots, func(s [2]int) bool { return s[0] <= r[0] && r[1] <= s[1] }) {
				if owners[i] = c.port(l.port); owners[i] == nil {
					return nil, fmt.Errorf("port %d serves slots %d-%d, a node not started here", l.port, r[0], r[1])
				}
			}
		}
	}
	for i, o := range owners {
		if o == nil {
			return nil, fmt.Errorf("no node serves slots %d-%d", c.ranges[i][0], c.ranges[i][1])
		}
	}
	return owners, nil
}

// replicaIn returns nil if lines show r as a healthy replica of m.
func replicaIn(lines []nodeLine, r, m *Server) error {
	var mid string
	for _, l := range lines {
		if l.port == m.Port {
			mid = l.id
		}
	}
	for _, l := range lines {
		if l.port == r.Port {
			if !l.has("slave") || l.has("fail") || l.has("fail?") || l.master != mid {
				return fmt.Errorf("CLUSTER NODES line %q; want a replica of %s (%s)", l.text, m.Addr, mid)
			}
			return nil
		}
	}
	return fmt.Errorf("CLUSTER NODES does not list %s", r.Addr)
}

// nodeLine is one line of CLUSTER NODES.
type nodeLine struct {
	text   string
	id     string
	port   int
	flags  []string
	master string   // the ID of a replica's master; "-" for a master
	slots  [][2]int // first and last of each range of slots served
}

func (l nodeLine) has(flag string) bool { return slices.Contains(l.flags, flag) }

// clusterNodes runs CLUSTER NODES on c and parses its reply.
func clusterNodes(ctx context.Context, c *redis.Client) ([]nodeLine, error) {
	text, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER NODES: %w", c.Options().Addr, err)
	}
	var lines []nodeLine
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		// <id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("%s: CLUSTER NODES line %q", c.Options().Addr, line)
		}
		hostport, _, _ := strings.Cut(f[1], "@")
		_, port, _ := net.SplitHostPort(hostport)
		l := nodeLine{text: line, id: f[0], flags: strings.Split(f[2], ","), master: f[3]}
		l.port, _ = strconv.Atoi(port)
		for _, slot := range f[8:] {
			if strings.HasPrefix(slot, "[") {
				continue // a slot being migrated or imported
			}
			lo, hi, ok := strings.Cut(slot, "-")
			if !ok {
				hi = lo
			}
			var r [2]int
			r[0], _ = strconv.Atoi(lo)
			r[1], _ = strconv.Atoi(hi)
			l.slots = append(l.slots, r)
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// stateOK returns nil if Nodes[k] reports cluster_state:ok and knows every
// node.
func (c *Cluster) stateOK(ctx context.Context, k int) error {
	info, err := c.clients[k].ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: CLUSTER INFO: %w", c.Nodes[k].Addr, err)
	}
	f := parseInfo(info)
	if st, kn := f["cluster_state"], f["cluster_known_nodes"]; st != "ok" || kn != strconv.Itoa(len(c.Nodes)) {
		return fmt.Errorf("%s: cluster_state:%s cluster_known_nodes:%s; want ok and %d", c.Nodes[k].Addr, st, kn, len(c.Nodes))
	}
	return nil
}

func (c *Cluster) port(port int) *Server {
	for _, s := range c.Nodes {
		if s.Port == port {
			return s
		}
	}
	return nil
}

func (c *Cluster) client(s *Server) *redis.Client {
	return c.clients[slices.Index(c.Nodes, s)]
}

// partner returns the other node of s's pair.
func (c *Cluster) partner(s *Server) *Server {
	k := slices.Index(c.Nodes, s)
	if k < c.masters {
		return c.Nodes[k+c.masters]
	}
	return c.Nodes[k-c.masters]
}

func (c *Cluster) needReplicas(t testing.TB, method string) {
	t.Helper()
	if len(c.Nodes) == c.masters {
		t.Fatalf("redistest: %s needs a cluster with replicas (ClusterOptions.Replicas)", method)
	}
}

func (c *Cluster) checkRange(t testing.TB, i int) {
	t.Helper()
	if i < 0 || i >= len(c.ranges) {
		t.Fatalf("redistest: slot range %d of a cluster of %d", i, len(c.ranges))
	}
}
