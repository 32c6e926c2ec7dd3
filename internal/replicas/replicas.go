// Package replicas decides how many replicas a write must reach before
// abacus counts it as durable, for the packages that follow their writes
// with WAIT (flush, serial, lease, queue).
//
// Redis replication is asynchronous: a write a master acknowledged can
// vanish when a replica that had not received it is promoted, and a master
// that was just demoted keeps accepting writes for a moment. A write that
// WAIT confirms on N replicas survives the promotion of any of them, and
// a demoted master cannot confirm anything (its replicas follow the new
// master), so waiting turns both failure modes into "not yet durable:
// keep it and try again".
//
// Policy holds the rule. A positive setting is a fixed count; a negative
// one never waits; zero ("auto", the default everywhere) waits for one
// replica as soon as the master has been seen replicated (see Replicated),
// and keeps waiting for one from then on, even while none is connected (a
// failover in progress looks exactly like that): a deployment with a
// replica is safe without configuration, and one without pays nothing.
package replicas

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RecheckEvery is how often Policy asks the master for its replica count
// while it has not seen one (a probe that fails is repeated at once).
const RecheckEvery = time.Second

// Policy is the number of replicas to wait for. Its zero value is "auto".
// It is safe for concurrent use.
type Policy struct {
	setting int // >0 fixed, <0 never, 0 auto

	mu      sync.Mutex
	seen    bool      // guarded by mu; auto: a replica was seen once
	checked time.Time // guarded by mu; last probe
}

// New returns the Policy for an option value: n > 0 waits for n replicas,
// n < 0 never waits, 0 is auto.
func New(n int) *Policy { return &Policy{setting: n} }

// Want returns how many replicas a write must reach: the fixed count, 0
// for never, and in auto mode 1 once a replica was seen (probing the
// master through rdb at most every RecheckEvery until then). A failed
// probe leaves the answer unchanged.
func (p *Policy) Want(ctx context.Context, rdb redis.UniversalClient) int {
	switch {
	case p.setting > 0:
		return p.setting
	case p.setting < 0:
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen {
		return 1
	}
	if now := time.Now(); now.Sub(p.checked) >= RecheckEvery {
		yes, err := Replicated(ctx, rdb)
		if err == nil {
			p.checked = now
		}
		if yes {
			p.seen = true
			return 1
		}
	}
	return 0
}

// Saw records that the master was seen with n replicas (a WAIT reply, say),
// so auto mode waits from now on if n > 0.
func (p *Policy) Saw(n int) {
	if n <= 0 || p.setting != 0 {
		return
	}
	p.mu.Lock()
	p.seen = true
	p.mu.Unlock()
}

// Replicated reports whether the master rdb writes to (on a cluster, any
// master) has a replica connected or a replication backlog. The backlog
// outlives a replica by repl-backlog-ttl (1 h by default), so an old master
// just after a failover, whose replica left to become master, counts as
// replicated: that is exactly where an unwaited write is lost.
func Replicated(ctx context.Context, rdb redis.UniversalClient) (bool, error) {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var any atomic.Bool
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			yes, err := replicated(ctx, c)
			if yes {
				any.Store(true)
			}
			return err
		})
		return any.Load(), err
	}
	return replicated(ctx, rdb)
}

func replicated(ctx context.Context, c redis.Cmdable) (bool, error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "connected_slaves:"); ok && v != "0" {
			return true, nil
		}
		if line == "repl_backlog_active:1" {
			return true, nil
		}
	}
	return false, nil
}

// Pipeline returns a pipeline whose commands all run on one connection to
// the master owning key, so that a WAIT at its end counts the replicas
// that acknowledged the writes before it: on a *redis.ClusterClient, a
// pipeline of the key's master (a cluster pipeline would send the keyless
// WAIT to any node); otherwise rdb's own.
func Pipeline(ctx context.Context, rdb redis.UniversalClient, key string) (redis.Pipeliner, error) {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		return node.Pipeline(), nil
	}
	return rdb.Pipeline(), nil
}
