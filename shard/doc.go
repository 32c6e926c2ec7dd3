// Package shard owns abacus's in-memory counters: lock-free, adaptively
// striped int64 cells and the concurrent name→counter table that finds them.
//
// A Counter starts with a single cell, and an Add is one atomic add to it.
// When a sampled check after an add sees that another core wrote the cell
// in between (the sign of contention), the cell inflates into a
// power-of-two array of cache-line padded stripes, picked by a
// per-goroutine hash and doubled on further contention up to a cap near
// GOMAXPROCS — the scheme of Java's LongAdder, which detects contention
// with a failed compare-and-swap instead. A cold counter therefore costs
// one 64-byte object; only hot counters pay for stripes.
//
// Counters are built for write-behind. Add marks a counter dirty and the
// Table keeps dirty counters on lock-free lists, one per goroutine hash,
// so a flusher visits only what changed. Table.Take moves the accumulated
// delta out of the cells with atomic swaps (an Add racing with Take lands
// either in this take or the next, never nowhere) into the counter's
// in-flight amount, where it stays until the table's owner settles it
// (Table.Settle: written remotely) or restores it (Table.Restore: not
// written; added back). The accounting belongs to the Table, not to the
// Counter: a handle on a counter can add to it but not settle it.
//
// Guarantees: no lock and no allocation on Add; lookups of existing names
// take no lock; no increment is lost or counted twice by Take, Settle and
// Restore. Not provided: persistence, or an atomic snapshot across counters.
// Package shard knows nothing of Redis.
package shard
