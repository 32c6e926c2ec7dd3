// Package engine is abacus's user-facing façade: named counters that cost
// nanoseconds to increment in-process and reach Redis as one write per
// dirty key per flush interval.
//
//	e, err := engine.New(rdb, engine.Options{})
//	views, err := e.Counter("pv:/home")
//	views.Inc()                   // ~7 ns, no allocation, no I/O
//	n, err := views.Value(ctx)    // Redis value + this process's unflushed delta
//	err = e.Close(ctx)            // final flush
//
// It wires package shard (the striped counters and name table) to package
// flush (batching, pipelining, exactly-once application) and adds cached,
// singleflighted reads, eviction of idle counters, options, lifecycle and
// stats. AddOnce is a retry-safe add: an idempotency token travels with
// the flush, which applies the add only if no process wrote that token
// within Options.TokenTTL. Counters with options of their own come from
// CounterWith;
// package engine/window builds per-time-window counters on them. Order
// IDs come from package serial directly.
//
// Guarantees, while Redis is reachable: a delta added at time t is in
// Redis by t + FlushInterval + one flush duration (Stats.MaxStaleness
// reports the bound observed); by default every delta is applied exactly
// once even when replies are lost (see package flush). While Redis is
// down, Add keeps working and deltas coalesce per key in memory; they are
// written when Redis returns. A crash loses what was added since the last
// confirmed flush: at most one flush interval plus one flush of increments.
// Close flushes everything and reports whatever it could not, within
// moments of its context ending.
package engine
