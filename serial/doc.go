// Package serial allocates unique, increasing int64 IDs (order numbers,
// invoice numbers) from a Redis counter at local-memory speed.
//
// An Allocator leases blocks of IDs with one INCRBY per block: a reply end
// to "INCRBY key size" grants the block (end-size, end], whose IDs Next then
// hands out with a single atomic add and no lock, no allocation and no
// round trip. Before a block runs out (when the unused share of it falls to
// Options.PrefetchThreshold) the next block is fetched in the background, so
// callers do not stall at block boundaries while Redis keeps up. At most one
// fetch per Allocator is in flight.
//
// Block size adapts to the rate at which IDs are consumed, within
// [Options.MinBlock, Options.MaxBlock], so that a block lasts about
// Options.TargetLifetime: busy allocators make few round trips, idle ones
// waste few IDs. The rule is in sizing.go.
//
// # Guarantees
//
//   - IDs are unique across every Allocator and process sharing a key, for
//     as long as Redis keeps the key (see Regression below).
//   - Within one Allocator, IDs are strictly increasing in the order in which
//     Next and NextN return them (as linearized by an atomic counter; two
//     goroutines may of course observe their results in either order).
//   - IDs are at least 1.
//   - The number of Redis round trips equals the number of blocks fetched
//     (plus failed fetches); Stats reports both.
//
// # What it does not do
//
// IDs are not gapless: the unused part of a block is lost when a process
// exits or crashes, and a block fetched but refused (regression, missing
// replica acknowledgement) is never handed out. IDs are not ordered across
// processes, only within one. The package does not persist anything itself:
// uniqueness after a Redis restart depends on Redis persistence (AOF with
// fsync always, or WAIT for replicas via Options.WaitReplicas).
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
// system of record, then Resume. An Allocator started after the loss has no
// memory to compare with and cannot detect it; that is what persistence or
// Reseed at startup is for.
//
// # Redis topologies
//
// An Allocator uses one key and is reached through redis.UniversalClient, so
// a single node, Sentinel and Redis Cluster work unchanged. With
// Options.WaitReplicas, INCRBY and WAIT are pipelined on one connection to
// the key's master.
package serial
