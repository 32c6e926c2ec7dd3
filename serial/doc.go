// Package serial allocates unique, increasing int64 IDs (order numbers,
// invoice numbers) from a Redis counter at local-memory speed.
//
// An Allocator leases blocks of IDs with one INCRBY per block: a reply end
// to "INCRBY key size" grants the block (end-size, end], whose IDs Next then
// hands out with a single atomic add and no lock, no allocation and no
// round trip. Before a block runs out (when the unused share of it falls to
// Options.PrefetchThreshold) the next block is fetched in the background, so
// callers do not stall at block boundaries while Redis keeps up. Fetches
// that have been slow move this earlier: with callers keeping every CPU
// busy, the goroutine that reads Redis' answer waits hundreds of
// milliseconds for one, so a fetch starts with a multiple of the IDs issued
// during the slowest recent fetch still in hand (Stats.FetchTime). At most
// one fetch per Allocator is in flight; a failed one is retried in the
// background, with backoff, while IDs remain.
//
// That atomic add is on one cache line that every core taking IDs writes,
// so under heavy contention the line's trips between cores, not the
// allocator, set the pace. Options.Unordered removes most of them: Next
// takes IDs from a chunk of the block held by one of a few lanes (4 per
// GOMAXPROCS), each on a cache line of its own and picked by a hash of
// the calling goroutine's stack address, so goroutines running at once
// rarely share one, though they may; the price is order, even within one
// goroutine (see the guarantees).
//
// # Replicas
//
// Redis replication is asynchronous: a block a master granted can vanish
// when a replica that had not received it is promoted, and the new master
// then grants the same IDs again, perhaps to another process. So by
// default (Options.Replicas 0, "auto") once the master has been seen
// with a replica, every INCRBY is followed by WAIT 1 on the same connection,
// and a block no replica acknowledged within Options.ReplicaTimeout is
// discarded, never issued: its IDs become a gap, and a later fetch gets a
// block above it. A block that was issued from is on the replica, so a
// promotion of that replica cannot regrant it.
//
// Through a failover no block can be acknowledged until the new master has
// a replica. To keep Next issuing meanwhile, an Allocator that waits for
// replicas holds acknowledged blocks ahead of the current one for
// Options.Reserve (default 60s) at the measured rate; Stats reports the
// IDs in hand, how long they last (Runway), and the fetches failing and
// discarded. When none is left, Next returns the last fetch's error, a
// *ReplicationError (ErrNotReplicated) when no replica acknowledged it, and
// never an unacknowledged ID.
//
// Block size adapts to the rate at which IDs are consumed, within
// [Options.MinBlock, Options.MaxBlock], so that a block lasts about
// Options.TargetLifetime, and at least through the fetch of the next one:
// busy allocators make few round trips, idle ones waste few IDs. The rules
// are in sizing.go.
//
// # Guarantees
//
//   - IDs are unique across every Allocator and process sharing a key, for
//     as long as Redis keeps the key: through failovers to a replica that
//     acknowledged every block issued (with one replica, the one promoted;
//     see Replicas and Regression below).
//   - Within one Allocator, IDs are strictly increasing in the order in which
//     Next and NextN return them (as linearized by an atomic counter; two
//     goroutines may of course observe their results in either order).
//     With Options.Unordered, IDs follow no order, not even one
//     goroutine's, except within one NextN.
//   - IDs are at least 1.
//   - The number of Redis round trips equals the number of blocks fetched
//     plus failed fetches (Stats reports both), plus in auto mode an INFO
//     at most every second until a replica (or a replication backlog) is seen.
//
// # What it does not do
//
// IDs are not gapless: the unused part of a block, and the blocks held
// ahead, are lost when a process exits or crashes, and a block fetched but
// refused (regression, missing replica acknowledgement) is never handed
// out. IDs are not ordered across processes, only within one. The package
// does not persist anything itself: uniqueness after a Redis restart
// depends on Redis persistence (AOF with fsync always), and after a
// failover on the promoted replica having acknowledged the blocks issued.
// WAIT 1 does not say which replica acknowledged: with two or more, a
// failover to another one (that had not received the block yet) can
// regrant IDs already issued; set Replicas to the number of replicas to
// close that, at the price of stalling (Reserve aside) whenever one is
// down. In auto mode an Allocator that has not seen a replica yet does not
// wait, so a process started while the master has none fetches as without
// replicas until it sees one.
//
// # Regression
//
// If Redis loses writes (restart without persistence, failover to a replica
// that missed them), INCRBY can answer with a value at or below IDs already
// issued. Every Allocator remembers the end of the highest block it accepted
// (Stats.HighWater) and refuses any block that does not start above it: the
// fetch fails with a *RegressionError (errors.Is(err, ErrRegression)), the
// Allocator stops issuing, even from the block it holds, and every later Next
// returns the same error until Resume. Recovery is explicit because only the
// application knows the true floor: other processes may have issued IDs this
// one never saw. Raise the key with Reseed (or Allocator.Resume) to a floor
// at or above every ID issued anywhere, typically the maximum ID in the
// system of record, then Resume. The check sees only this Allocator's own
// blocks: one whose high water is below a block another Allocator was
// granted and Redis then lost (one started after the loss has none) cannot
// tell, and would issue it again. That is what waiting for replicas
// prevents across failovers, and persistence or Reseed at startup across
// restarts.
//
// # Redis topologies
//
// An Allocator uses one key and is reached through redis.UniversalClient, so
// a single node, Sentinel and Redis Cluster work unchanged. INCRBY and WAIT
// are pipelined on one connection to the key's master (on a Cluster, the
// master of the key's slot; a failed fetch asks the cluster client to reload
// its slot map). Auto mode asks the master for its replicas (INFO) before
// the first block and then at most every second until it sees one; on a Cluster
// it counts any master's.
package serial
