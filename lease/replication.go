package lease

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/replicas"
	"github.com/abacus-go/abacus/internal/script"
)

// replication makes a lease's writes (acquisition, refresh) count only once
// the replicas wanted acknowledged them, so that a failover to one of them
// keeps the lease key, its expiry and the fence. One is shared by the
// attempts of an Acquire call, the lease it returns, and the acquisitions
// of a Hold loop. It is safe for concurrent use.
//
// The number wanted is a replicas.Policy of Options.Replicas. In auto mode
// (0) the Policy would learn whether the master has a replica by asking it
// (INFO, one round trip per Acquire call, since Options carries no state
// between calls), and would answer from the replicas connected now, which
// is 0 on an old master right after a failover: exactly when a write it
// accepts is lost. So until a replica is seen, the write scripts check
// for themselves, in the same round trip, and refuse to write on a master
// that has or lately had a replica (replicatedLua); the write is then
// sent again with WAIT, and every later one of this replication too.
type replication struct {
	policy *replicas.Policy
	// guard is set in auto mode until a script reports a replica: writes
	// go without WAIT and ask the script to refuse on a replicated master.
	guard atomic.Bool
}

func newReplication(setting int) *replication {
	r := &replication{policy: replicas.New(setting)}
	r.guard.Store(setting == 0)
	return r
}

// write runs s, a script that writes the lease (a positive reply) or finds
// it is not ours (0), with WAIT for the replicas wanted in the same
// pipeline, on one connection to the key's master. It returns the reply,
// the round trips made, and an error: the script's, or, when it wrote and
// fewer replicas than wanted acknowledged (or WAIT failed), a
// *ReplicationError. args are the script's arguments but the last, the
// guard.
func (r *replication) write(ctx context.Context, c *config, rdb redis.UniversalClient,
	s *redis.Script, keys []string, args ...any) (reply int64, rts int, err error) {
	for {
		guard := r.guard.Load()
		want := 0
		if !guard {
			// No I/O: a fixed setting, never, or auto after Saw.
			want = r.policy.Want(ctx, rdb)
		}
		var acked int64
		var n int
		if want == 0 {
			reply, n, err = runScript(ctx, rdb, s, keys, append(args, guardArg(guard))...)
		} else {
			reply, acked, n, err = writeAndWait(ctx, rdb, c.key, s, keys, append(args, "0"), want, c.ReplicaTimeout)
		}
		rts += n
		switch {
		case err == nil && reply == replyReplicated:
			if !guard {
				// The script refuses only when asked to (ARGV[3]).
				return 0, rts, fmt.Errorf("script refused a write sent with WAIT")
			}
			// Seen once, waited for from now on: replicas.Policy's auto.
			r.policy.Saw(1)
			r.guard.Store(false)
			continue
		case reply > 0 && err != nil:
			return reply, rts, c.notReplicated(want, 0, err)
		case err != nil:
			return 0, rts, err
		case reply > 0 && acked < int64(want):
			return reply, rts, c.notReplicated(want, int(acked), nil)
		}
		return reply, rts, nil
	}
}

// notReplicated returns the *ReplicationError of a write of c's key that
// want replicas were asked for and acked acknowledged, or whose WAIT
// failed with waitErr.
func (c *config) notReplicated(want, acked int, waitErr error) error {
	return replicas.NewError(ErrNotReplicated, fmt.Sprintf("write of key %q", c.key), want, acked, c.ReplicaTimeout, waitErr)
}

func guardArg(guard bool) string {
	if guard {
		return "1"
	}
	return "0"
}

// writeAndWait runs s followed by WAIT want on one connection to the
// master of key (script.RunWait). A reply above 0 with an error means the
// script wrote and WAIT failed.
func writeAndWait(ctx context.Context, rdb redis.UniversalClient, key string, s *redis.Script,
	keys []string, args []any, want int, timeout time.Duration) (reply, acked int64, rts int, err error) {
	cmd, n, rts, err := script.RunWait(ctx, rdb, key, want, timeout, s, keys, args...)
	if cmd == nil {
		return 0, 0, rts, err
	}
	reply, cerr := cmd.Int64()
	if cerr != nil || reply <= 0 {
		return reply, 0, rts, cerr
	}
	return reply, int64(n), rts, err
}
