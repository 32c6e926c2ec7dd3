package flush

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// node is a Redis master the Flusher sends pipelines to: on a Cluster one
// per master of the slot map, otherwise the Flusher's own client.
type node struct {
	c        redis.Cmdable
	noScript bool // send EVAL until a reply shows the script is cached here
	// home is, on a Cluster, the group (record slot) that numbers the
	// master's fresh batches: a slot the master owns (see topology.load).
	home int

	fresh []Delta // scratch of a round: the master's fresh deltas

	// The state of a send (see Flusher.send).
	out     []*batch // batches routed here, not sent yet
	cur     []*batch // batches of the exchange in flight
	chunk   int      // how many batches cur had when first sent
	retries int      // how many times cur was sent again
	rebased bool     // a regressed record was accepted: send cur again
	ex      exchange
}

// topology maps hash slots to the masters of a Redis Cluster, from the
// ClusterClient's own slot map, so that a flush sends each master one
// pipeline of batches, each batch guarded by a writer record on that
// master. A stale map costs a refusal, never a wrong write: Redis
// refuses a batch whose record it does not serve (MOVED, ASK) and, in
// the script, every key it does not serve (see applySource), and each
// refusal marks the map stale.
type topology struct {
	cc    *redis.ClusterClient
	owner *[slots]int32 // slot → index in nodes
	nodes []*node
	stale bool // reload before the next round
}

// route returns the master serving group g's record, as far as the map
// knows.
func (t *topology) route(g int) *node { return t.nodes[t.owner[g]] }

// refresh reloads the map if it is stale. On failure the old map stays in
// use, still stale; refresh fails only while there is no map at all.
func (t *topology) refresh(ctx context.Context, used func(g int) bool) error {
	if !t.stale {
		return nil
	}
	err := t.load(ctx, used)
	if err == nil {
		t.stale = false
	} else if t.nodes == nil {
		return fmt.Errorf("flush: load the cluster slot map: %w", err)
	}
	return nil
}

// load reads the slot map and chooses each master's home: the one it had,
// if it still owns it; else a slot it owns whose group was used before
// (used), so that a master promoted in a failover carries on with the
// record it inherited from its old master; else the highest slot it owns.
// Each home that moves away leaves a record behind (idle, until
// collected), and redis-cli's reshard and rebalance move a master's
// lowest slots first: the highest is the one they move last.
func (t *topology) load(ctx context.Context, used func(g int) bool) error {
	// ForEachMaster reloads the client's slot map before it returns
	// (ReloadState only schedules a reload), so MasterForKey below
	// answers from a map read now.
	if err := t.cc.ForEachMaster(ctx, func(context.Context, *redis.Client) error { return nil }); err != nil {
		return err
	}
	prev := make(map[redis.Cmdable]*node, len(t.nodes))
	for _, n := range t.nodes {
		prev[n.c] = n
	}
	index := make(map[redis.Cmdable]int32)
	owner := new([slots]int32)
	var nodes []*node
	for s, tag := range slotTags() {
		c, err := t.cc.MasterForKey(ctx, tag)
		if err != nil {
			return err
		}
		i, ok := index[c]
		if !ok {
			n := prev[c]
			if n == nil {
				n = &node{c: c, noScript: true, home: -1}
			}
			i = int32(len(nodes))
			index[c] = i
			nodes = append(nodes, n)
		}
		owner[s] = i
	}
	for i, n := range nodes {
		if n.home >= 0 && owner[n.home] == int32(i) {
			continue
		}
		n.home = -1
		for s := slots - 1; s >= 0; s-- {
			if owner[s] != int32(i) {
				continue
			}
			if n.home < 0 || used(s) {
				n.home = s
			}
			if used(s) {
				break
			}
		}
	}
	t.owner, t.nodes = owner, nodes
	return nil
}
