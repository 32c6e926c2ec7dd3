package metrics

import (
	"github.com/abacus-go/abacus/engine"
)

// es abbreviates the type of the engine's stat table.
type es = engine.Stats

// engineStatTable lists the engine's metrics; see the package comment.
var engineStatTable = []stat[es]{
	counter("flushes_total", "Flush cycles run.", func(s es) float64 { return float64(s.Flushes) }),
	counter("flush_failures_total", "Flush cycles that left batches pending or met a transport error.", func(s es) float64 { return float64(s.FailedFlushes) }),
	counter("flush_round_trips_total", "Pipelines the flusher sent to Redis.", func(s es) float64 { return float64(s.RoundTrips) }),
	counter("flush_commands_total", "Redis commands the flusher sent (script calls, or INCRBY and PEXPIRE).", func(s es) float64 { return float64(s.Commands) }),
	counter("flushed_keys_total", "Key deltas Redis applied.", func(s es) float64 { return float64(s.KeysFlushed) }),
	gauge("flushed_delta", "Sum of the deltas Redis applied (deltas may be negative).", func(s es) float64 { return float64(s.DeltaFlushed) }),
	counter("resent_batches_total", "Batches sent again after an unknown outcome.", func(s es) float64 { return float64(s.Resent) }),
	counter("duplicate_batches_total", "Resent batches Redis had applied already, not applied again.", func(s es) float64 { return float64(s.Duplicates) }),
	counter("key_errors_total", "Deltas Redis refused for their key.", func(s es) float64 { return float64(s.KeyErrors) }),
	counter("lost_batches_total", "Batches given up in doubt.", func(s es) float64 { return float64(s.LostBatches) }),
	gauge("lost_delta", "Sum of the deltas of the batches given up in doubt.", func(s es) float64 { return float64(s.LostDelta) }),
	counter("unreplicated_batches_total", "Batches applied while fewer replicas than wanted acknowledged them, kept and resent.", func(s es) float64 { return float64(s.Unreplicated) }),
	counter("regressions_total", "Writer records found behind what the writer knows was applied: Redis lost acknowledged writes.", func(s es) float64 { return float64(s.Regressions) }),
	gauge("regressed_delta", "Sum of the deltas known lost with regressed writer records.", func(s es) float64 { return float64(s.RegressedDelta) }),
	gauge("pending_batches", "Sent batches whose outcome is not known yet.", func(s es) float64 { return float64(s.PendingBatches) }),
	gauge("pending_keys", "Keys in the batches whose outcome is not known yet.", func(s es) float64 { return float64(s.PendingKeys) }),
	gauge("pending_delta", "Sum of the deltas of the batches whose outcome is not known yet.", func(s es) float64 { return float64(s.PendingDelta) }),
	gauge("last_flush_timestamp_seconds", "End of the last flush cycle, in seconds since the Unix epoch; 0 before the first.", lastFlush),
	gauge("last_flush_duration_seconds", "Duration of the last flush cycle.", func(s es) float64 { return s.LastFlushDuration.Seconds() }),
	gauge("max_flush_duration_seconds", "Duration of the longest flush cycle.", func(s es) float64 { return s.MaxFlushDuration.Seconds() }),
	gauge("max_staleness_seconds", "Observed staleness bound: the longest time from a flush to Redis confirming the deltas it could have just missed.", func(s es) float64 { return s.MaxStaleness.Seconds() }),
	gauge("counters", "Distinct counter names in memory.", func(s es) float64 { return float64(s.Counters) }),
	counter("rejected_adds_total", "Adds after Close, dropped.", func(s es) float64 { return float64(s.RejectedAdds) }),
	counter("evicted_counters_total", "Idle counters evicted from memory.", func(s es) float64 { return float64(s.Evicted) }),
	gauge("discarded_delta", "Sum of the deltas dropped by Discard.", func(s es) float64 { return float64(s.DiscardedDelta) }),
	counter("collected_records_total", "Stale writer records this engine deleted.", func(s es) float64 { return float64(s.RecordsCollected) }),
	counter("reads_total", "Value calls.", func(s es) float64 { return float64(s.Reads) }),
	counter("read_cache_hits_total", "Value calls answered from the read cache.", func(s es) float64 { return float64(s.ReadCacheHits) }),
	counter("read_round_trips_total", "GETs sent to Redis for Value calls, shared by concurrent readers.", func(s es) float64 { return float64(s.ReadRoundTrips) }),
	gauge("unique_counts", "Unique counts (HyperLogLog) in memory.", func(s es) float64 { return float64(s.Uniques.Counts) }),
	counter("unique_commands_total", "Redis commands the unique counts' flushes sent.", func(s es) float64 { return float64(s.Uniques.Commands) }),
	counter("unique_registers_total", "HyperLogLog registers written, as confirmed by Redis.", func(s es) float64 { return float64(s.Uniques.Registers) }),
	counter("unique_failures_total", "Unique count writes that failed and were resent.", func(s es) float64 { return float64(s.Uniques.Failures) }),
	counter("unique_refusals_total", "Unique count writes Redis refused for their key.", func(s es) float64 { return float64(s.Uniques.Refusals) }),
	counter("once_adds_total", "AddOnce calls whose token was new to this process.", func(s es) float64 { return float64(s.Once.Adds) }),
	counter("once_dropped_total", "AddOnce calls dropped in this process, which held their token.", func(s es) float64 { return float64(s.Once.Dropped) }),
	counter("once_applied_total", "Token adds Redis applied.", func(s es) float64 { return float64(s.Once.Applied) }),
	counter("once_seen_total", "Token adds Redis did not apply because it held their token.", func(s es) float64 { return float64(s.Once.Seen) }),
	counter("once_lost_total", "Token adds whose batch was given up in doubt; their tokens are not remembered.", func(s es) float64 { return float64(s.Once.Lost) }),
	gauge("once_pending", "Token adds not yet confirmed by Redis.", func(s es) float64 { return float64(s.Once.Pending) }),
	gauge("once_remembered_tokens", "Flushed tokens whose retries this process drops without asking Redis.", func(s es) float64 { return float64(s.Once.Remembered) }),
	counter("once_backlogged_total", "AddOnce calls turned away because too many token adds waited for Redis.", func(s es) float64 { return float64(s.Once.Backlogged) }),
}

func lastFlush(s es) float64 {
	if s.LastFlush.IsZero() {
		return 0
	}
	return float64(s.LastFlush.UnixNano()) / 1e9
}

func engineStats(e *engine.Engine) part {
	return newFamily("engine", engineStatTable, nil, e.Stats)
}
