package engine

import "github.com/abacus-go/abacus/flush"

// Stats is a snapshot of an Engine's activity. The flush figures are
// those of package flush; see flush.Stats.
type Stats struct {
	flush.Stats
	Counters       int    // distinct counter names in memory
	RejectedAdds   uint64 // Adds after Close, dropped
	Evicted        uint64 // idle counters evicted from memory (see Options.IdleEvict)
	DiscardedDelta int64  // deltas dropped by Discard
	// RecordsCollected counts stale writer records this engine deleted
	// (see Options.RecordTTL).
	RecordsCollected uint64
	Reads            uint64 // Value calls
	ReadCacheHits    uint64 // Value calls answered from the read cache
	ReadRoundTrips   uint64 // GETs sent for Value (shared by concurrent readers)
	// Uniques are the figures of the unique counts (see Engine.Unique).
	Uniques UniqueStats
	// Once are the figures of retry-safe adds (see Engine.AddOnce).
	Once OnceStats
}

// Stats returns a snapshot of e's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Stats:            e.flusher.Stats(),
		Counters:         e.table.Len(),
		RejectedAdds:     e.rejected.Load(),
		Evicted:          e.evicted.Load(),
		DiscardedDelta:   e.discarded.Load(),
		RecordsCollected: e.recordsCollected.Load(),
		Reads:            e.readStats.reads.Load(),
		ReadCacheHits:    e.readStats.hits.Load(),
		ReadRoundTrips:   e.readStats.roundTrips.Load(),
		Uniques:          e.uniqueStats(),
		Once:             e.once.stats(),
	}
}
