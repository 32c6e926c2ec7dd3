// Package flush owns turning counter deltas taken from a Source into Redis
// writes: batching, pipelining, retry with backoff, and exactly-once
// application.
//
// A Flusher pulls deltas from a Source every Interval, cuts them into
// batches of at most BatchKeys keys, and sends them in pipelines of at most
// PipelineKeys keys. Keys whose delta is zero are never sent.
//
// # Exactly-once (the default)
//
// A pipeline whose reply is lost may or may not have been applied: a blind
// retry double counts, a drop loses. In ExactlyOnce mode every Flusher has a
// random writer ID and numbers its batches. A Lua script applies a batch's
// INCRBYs only if its sequence number is above the one recorded for the
// writer, and records it in the same atomic step. A batch whose outcome is
// unknown keeps its number and contents and is sent again, before anything
// newer, until Redis answers; a duplicate is recognised and not applied
// twice, and the script reports the per-key errors the first application
// met. Client-side retries by go-redis are therefore harmless too.
//
// A flush allocates nothing per key in steady state (AtLeastOnce mode
// allocates go-redis' commands: one per key, two with a TTL, and a ZADD
// per registration): batches are recycled, a
// pipeline's keys (Options.KeyPrefix+Delta.Key) are written into one
// buffer reused by the next, and the script calls' arguments are
// pointers, which go-redis writes without boxing them.
//
// Records carry no Redis TTL, so that no eviction policy removes them
// ahead of the counters they protect; CollectRecords deletes the records of
// writers idle for RecordTTL (default one hour), by Redis' own clock. A
// batch in doubt whose record vanished anyway (an allkeys-* eviction, a
// restart without persistence, a lossy failover) is not resent: it yields
// a *LostError (errors.Is ErrRecordLost) naming its deltas. CheckEviction
// tells whether the server's maxmemory policy can evict abacus' state.
//
// A writer ID is unique to its Flusher: Options.WriterID is only a label,
// so no configuration can make two writers take each other's batches for
// duplicates.
//
// # Retry-safe adds
//
// Exactly-once covers a writer's own batches, not its callers' retries: a
// request retried on another process is a second delta. A Delta with a
// Token is applied only if the script creates the token's key (SET NX PX,
// expiring after Options.TokenTTL) in the same atomic step, so a delta
// carried again under a token Redis still holds is not applied, and is
// given back to the Source with TokenSeen set. A resent batch that Redis
// had applied reports the same tokens seen, from its writer record. The
// deltas of one key whose tokens are new are summed into one INCRBY per
// batch, so Redis runs about one command (the SET) per token. A token
// whose delta Redis refuses for its key is deleted in the same step, to
// be applied when it is sent again.
//
// # Redis Cluster
//
// A script call that declares keys of several slots is refused
// (CROSSSLOT), and a batch and a record per slot would cost thousands of
// script calls and records for a flush of a few thousand keys. Instead a
// Flusher groups keys by the master serving them, as the ClusterClient's
// slot map says, and sends each master batches of up to BatchKeys keys
// under one writer record: the master's home, a slot it owns, named with
// a hash tag (the slot it had, while it owns it; else one whose record it
// inherited, as a replica promoted in a failover does; else its highest
// slot, the last that redis-cli's reshard and rebalance move away). The
// script declares only the record; it reaches the counters as undeclared
// keys, which its allow-cross-slot-keys flag (Redis 7.0 and later) lets
// span slots, and Redis checks each of its commands against the slots the
// node serves at that moment, so a key is applied only where it lives.
// Keys refused (Stats.Moved) go back to the Source and, once the slot map
// is reloaded, to their master. Pipelines go to each master's own client:
// the ClusterClient would follow an ASK with ASKING, which would let the
// script reach keys of every slot the master is importing, including keys
// still on the master migrating them.
//
// Exactly-once holds through failover and resharding:
//
//   - A batch applies only where its record is, and atomically with it:
//     the script runs on the node serving the record's slot (others answer
//     MOVED or ASK, and ASK is not followed), and its effects, record and
//     counters, replicate in one MULTI/EXEC.
//   - The keys a batch applied are fixed when it first applies, and the
//     record keeps the others with its seq: a resend that finds the batch
//     applied settles the same keys and gives the others back. Those were
//     applied nowhere.
//   - Resharding moves keys whole (MIGRATE): a counter carries every delta
//     applied to it to its new master, a record its seq and refusals. So a
//     batch in doubt whose record moved is resent to the record's new
//     master and found applied or not exactly as on the old one; if not,
//     it applies there to the keys that master serves, and the others go
//     back. A batch whose record is being migrated (ASK) stays in doubt
//     until the slot has moved.
//   - A key refused (its slot moved, or migrating with the key gone, or
//     importing) was not applied, so its delta is counted once whichever
//     batch and record carry it next. A stale slot map costs refusals,
//     never a double or a lost count.
//   - In a failover, as on a single node, a record replicates with its
//     batches' effects, a batch counts as written once WAIT saw it on a
//     replica, and a promoted replica whose record is behind the writer's
//     floor is reported (RegressionError).
//
// So while the slot map holds still a writer has one record per master.
// When a master's home slot moves away, its record moves with it, still
// guarding the batches it numbered, and the master starts another; the
// old one stays idle until CollectRecords deletes it. Keys of a slot in
// mid-migration that its old master no longer holds wait until the slot
// has moved: a flush that cannot place them returns an error wrapping
// ErrMoved, and a later flush sends them. A server older than 7.0 cannot
// compile the script (ErrScriptRejected).
//
// # At-least-once
//
// AtLeastOnce mode sends plain pipelined INCRBYs (each followed by a
// PEXPIRE where the key has a TTL), after a round trip of ZADD NX when
// some deltas carry a registration (see Delta.Register). It is cheaper per
// key but a lost reply is retried and may be counted twice (as may
// go-redis's own pipeline retries); use it only where an occasional
// overcount is fine.
//
// # Errors
//
// A key Redis refuses (WRONGTYPE, a non-integer value, INCRBY overflow)
// yields a *KeyError; its delta goes back to the Source and every other key
// is still applied. Background flushes send a refused key again only after
// a backoff that doubles per refusal up to MaxKeyBackoff, so a poisoned key
// costs one command and one OnError call per backoff, not per Interval.
// A server error that refuses a whole batch is wrapped with its sentinel
// (ErrOutOfMemory, ErrReadOnly, ErrNoScript, ...), and the first one a
// flush met is the one reported. Transport failures leave batches pending and are
// retried with exponential backoff; the Source keeps accumulating, so
// memory grows with the number of distinct keys, not with the outage.
package flush
