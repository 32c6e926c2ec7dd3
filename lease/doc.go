// Package lease owns Redis leases: named, expiring locks that say which
// process owns a piece of shared work, with a fencing number, automatic
// renewal and a context that ends when ownership ends.
//
// A lease is acquired with [Acquire] (waits, retrying with exponential
// backoff and full jitter, until its context ends) or [TryAcquire] (one
// attempt). Acquisition is one round trip: a Lua script runs
// SET key token NX PX ttl and, when that succeeds, INCR of the lease's fence
// key, so every successful acquisition of a name gets a fencing number
// strictly greater than every earlier one. On a master with replicas WAIT
// follows in the same round trip, and by default the first acquisition of
// an Acquire call takes one more round trip to find out that it must. Pass [Lease.Fence] to downstream
// writes so that storage can reject a stale owner (Kleppmann's fencing
// token argument): a lease alone cannot stop a paused process from writing
// after its lease expired.
//
// # Keys
//
// A lease named n lives at KeyPrefix+"{"+n+"}" and its fence counter at
// KeyPrefix+"{"+n+"}:fence". The braces are a Redis Cluster hash tag: both
// keys are in one slot, so one script can touch both on Redis Cluster. The
// default prefix is [DefaultKeyPrefix]. The fence key has no expiry (one
// small integer per name) because a fence that restarted from zero would no
// longer be increasing.
//
// # Guarantees
//
//   - Release, Refresh and TTL run Lua scripts that check the random
//     ownership token, so no process deletes or extends a lease it does not
//     hold, however late its commands arrive.
//   - Every lease has a local deadline on the monotonic clock: the time the
//     last confirmed acquisition or renewal was sent, plus the TTL, minus a
//     safety margin. Since Redis starts the TTL when it receives the command,
//     which is after it was sent, the lease's [Lease.Context] is cancelled
//     before the key can expire in Redis, even when renewals hang on a dead
//     connection (assuming clock rates agree within the margin).
//   - With [Options.AutoRenew], a watchdog goroutine renews the lease every
//     [Options.RenewInterval] (default a third of the TTL) until it is
//     released or lost. The loss signal never waits for a renewal to come
//     back; still, set go-redis's ContextTimeoutEnabled on the client so
//     that a renewal stuck on a dead connection is abandoned at the local
//     deadline instead of the client's read timeout.
//   - On replicated Redis (Sentinel, Cluster with replicas) an acquisition
//     and every refresh count only once the replicas wanted acknowledged
//     them: WAIT in the same round trip, on the same connection
//     ([Options.Replicas]; by default one replica as soon as the master has
//     or lately had one, none on a single Redis). A failover to a replica
//     that acknowledged keeps the key, its expiry and the fence key, so the
//     new master neither hands the lease to a second owner while the first
//     still believes it holds it, nor issues a fence at or below one already
//     handed out. What an old master accepts after a failover is never
//     acknowledged (its replica left it), so it fails with
//     [ErrNotReplicated]: an acquisition is released, and a refresh does
//     not move the local deadline, so the old owner stops in time. The
//     price is availability: while the master has fewer replicas than
//     wanted (after a failover of a master with one replica, until the old
//     master replicates from the new one), no lease is acquired or renewed,
//     and holders stop at their deadlines.
//   - The errors tell apart: not obtained ([ErrNotObtained]), lost while
//     believed held ([ErrLost]), expired before release ([ErrExpired]),
//     already released ([ErrReleased]), not acknowledged by replicas
//     ([ErrNotReplicated]), bad input ([ErrInvalid], [*InvalidError]), and
//     a cancelled context (the error wraps ctx.Err()).
//
// # Not done
//
// WAIT proves a replica received a write, not that the replica promoted
// next is one that did: with more than one replica and Replicas below
// their number, a failover to a replica that had not caught up can still
// lose an acquisition, a refresh or fence increments (Sentinel and Cluster
// prefer the replica with the most data, which makes it unlikely, not
// impossible); set Replicas to the number of replicas to close that, at
// the price of no leases while any replica is down. A master restarted
// without persistence, or a failover that loses acknowledged writes, resets
// the fence: nothing here detects that. Expiry on the new master runs on
// its clock, so clocks of master and replicas must agree within the
// safety margin. Where INFO is refused (renamed away), auto cannot tell
// that the master has replicas and never waits: set Replicas. There is no Redlock over independent primaries, no
// fairness or queueing among waiters, and no reentrancy: acquiring a held
// name again from the same process waits like any other contender.
package lease
