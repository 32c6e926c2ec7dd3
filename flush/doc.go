// Package flush owns turning drained counter deltas into Redis writes:
// batching, pipelining, retry with backoff, and exactly-once application.
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
// On Redis Cluster a script may only touch one hash slot, so batches are
// grouped per slot and each (writer, slot) has its own record, placed in
// that slot with a hash tag.
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
// # At-least-once
//
// AtLeastOnce mode sends plain pipelined INCRBYs. It is cheaper per key but
// a lost reply is retried and may be counted twice (as may go-redis's own
// pipeline retries); use it only where an occasional overcount is fine.
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
