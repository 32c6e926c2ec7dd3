package serial

// Stats is a snapshot of an Allocator's activity since New.
type Stats struct {
	// Issued counts IDs handed out by Next and NextN.
	Issued int64
	// Blocks counts blocks accepted from Redis.
	Blocks int64
	// RoundTrips counts block fetches sent to Redis: one INCRBY each, with
	// WAIT in the same pipeline when configured. It equals Blocks plus
	// failed, refused and discarded fetches. (The client's own retries of
	// a failed command are not visible here.)
	RoundTrips int64
	// FetchErrors counts fetches that failed: Redis errors, timeouts,
	// *ReplicationError. Regressions are counted separately.
	FetchErrors int64
	// Waits counts calls to Next or NextN that found no ID at hand and had
	// to wait for Redis (whether or not they then got one). With prefetch
	// working and Redis keeping up, it stays at the first call's 1.
	Waits int64
	// Regressions counts blocks refused because Redis went backwards.
	Regressions int64
	// BlockSize is the size the next fetch will request.
	BlockSize int64
	// Remaining is how many IDs the current block has left, not counting a
	// prefetched one.
	Remaining int64
	// Prefetched reports whether a fetched block is waiting to become
	// current.
	Prefetched bool
	// HighWater is the end of the highest block accepted: every ID issued
	// so far, and every ID that can be issued before the next fetch, is at
	// most HighWater.
	HighWater int64
}

// Stats returns a snapshot of the Allocator's counters. It takes the slow
// path's lock, so it is cheap but not meant for every Next.
func (a *Allocator) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.cur.Load()
	used := min(max(b.used.Load(), 0), b.size)
	return Stats{
		Issued:      a.retired + used,
		Blocks:      a.stats.blocks,
		RoundTrips:  a.stats.roundTrips,
		FetchErrors: a.stats.fetchErrors,
		Waits:       a.stats.waits,
		Regressions: a.stats.regressions,
		BlockSize:   a.size,
		Remaining:   b.size - used,
		Prefetched:  a.ready != nil,
		HighWater:   a.highWater,
	}
}
