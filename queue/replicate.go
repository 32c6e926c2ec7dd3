package queue

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/replicas"
	"github.com/abacus-go/abacus/internal/script"
)

// Where the queue WAITs, and why (see also the package doc): WAIT returns
// how many replicas have the writes made so far on its own connection,
// and a demoted master's replicas follow the new master, so it confirms
// nothing. Push WAITs so that nil means "survives a promotion"; the takes
// of consumers and Drain WAIT so that no handler runs on messages taken
// from a demoted master (the take scripts always write when they return
// something, so that the WAIT covers moves made earlier on other
// connections). Acknowledgements, nacks and reclaims do not: losing one
// puts a message back where it was, in a consumer's hands at the
// failover, and a WAIT could not undo the handler's side effect.

// want returns how many replicas the next write must reach: Options.Replicas
// through a replicas.Policy, whose auto mode also counts a replication
// backlog as a replica, as package lease does.
func (q *Queue) want(ctx context.Context) int { return q.replicas.Want(ctx, q.rdb) }

// execWait sends pipe's commands followed by WAIT want (want > 0) and
// returns the replicas that acknowledged. pipe must come from
// q.pipeline. On an error the commands' own errors say which applied.
func (q *Queue) execWait(ctx context.Context, pipe redis.Pipeliner, want int) (acked int, err error) {
	// WAIT's timeout 0 would mean "forever": send at least 1ms.
	wait := pipe.Do(ctx, "WAIT", want, max(q.opts.ReplicaTimeout.Milliseconds(), 1))
	if _, err := pipe.Exec(ctx); err != nil {
		q.reloadOnError(err)
		return 0, err
	}
	n, err := wait.Int64()
	return int(n), err
}

// pipeline returns a pipeline whose commands all run on one connection to
// the master of the queue's slot, so that a WAIT at its end counts the
// replicas that have the writes before it.
func (q *Queue) pipeline(ctx context.Context) (redis.Pipeliner, error) {
	pipe, err := replicas.Pipeline(ctx, q.rdb, q.keys.Ready)
	if err != nil {
		q.reloadOnError(err)
	}
	return pipe, err
}

// runWait runs s like run, followed by WAIT want (want > 0) on the same
// connection (script.RunWait), and returns the script's reply and the
// replicas that acknowledged. The script's own errors are in its reply.
func (q *Queue) runWait(ctx context.Context, want int, s *redis.Script, keys []string, args ...any) (*redis.Cmd, int, error) {
	cmd, acked, _, err := script.RunWait(ctx, q.rdb, q.keys.Ready, want, q.opts.ReplicaTimeout, s, keys, args...)
	switch {
	case err != nil:
		q.reloadOnError(err)
	case cmd.Err() != nil:
		q.reloadOnError(cmd.Err()) // it ignores the script's own replies
	}
	return cmd, acked, err
}

// reloadOnError makes a cluster client refresh its slot map after a
// pipeline to one node failed with a redirection or a broken connection: a
// node pipeline does not follow MOVED, and the map would otherwise stay
// stale after a failover until its periodic reload. Script replies such as
// LOST are not the map's fault.
func (q *Queue) reloadOnError(err error) {
	cc, ok := q.rdb.(*redis.ClusterClient)
	if !ok {
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !movedOn(err) {
		return
	}
	cc.ReloadState(context.Background())
}

// movedOn reports whether err says the node no longer serves the slot.
func movedOn(err error) bool {
	for _, p := range []string{"MOVED", "ASK", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}
