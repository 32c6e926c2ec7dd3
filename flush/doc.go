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
// that slot with a hash tag. Records expire RecordTTL after the writer's
// last batch, so writers that come and go leave no garbage behind.
//
// Exactly-once holds as long as an unknown outcome is resolved within
// RecordTTL (default one hour): a record that expired while its batch was
// in doubt can no longer tell a duplicate apart.
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
// is still applied. Transport failures leave batches pending and are
// retried with exponential backoff; the Source keeps accumulating, so
// memory grows with the number of distinct keys, not with the outage.
package flush
