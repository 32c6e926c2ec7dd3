package serial

import "time"

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
	// blocks not acknowledged (*ReplicationError). Regressions are counted
	// separately.
	FetchErrors int64
	// Unreplicated counts blocks discarded because fewer replicas than
	// Replicas acknowledged them (WAIT failures); also in FetchErrors.
	// It grows through a failover, until the new master has a replica.
	Unreplicated int64
	// Failing counts the fetches failed since the last one that succeeded:
	// above 0, Next issues from the blocks in hand (InHand, Runway) while
	// failed fetches are retried in the background.
	Failing int64
	// LastError is why the last of the Failing fetches failed (a
	// *ReplicationError, a connection error), or nil.
	LastError error
	// Replicas is how many replicas the last fetch waited for: the
	// option, or in auto mode 1 once a replica was seen and 0 before.
	Replicas int
	// Waits counts calls to Next or NextN that found no ID at hand and had
	// to wait for Redis (whether or not they then got one). The callers of
	// the first block always wait; after it, with prefetch working and
	// Redis keeping up, it stays where it was, even with the CPU saturated
	// (see FetchTime).
	Waits int64
	// Regressions counts blocks refused because Redis went backwards.
	Regressions int64
	// BlockSize is the size the next fetch will request.
	BlockSize int64
	// Remaining is how many IDs the current block has left, and with
	// Options.Unordered the chunks its lanes hold, not counting a
	// prefetched block.
	Remaining int64
	// Prefetched reports whether a fetched block is waiting to become
	// current (Ahead > 0).
	Prefetched bool
	// Ahead is the number of acknowledged blocks held beyond the current
	// one (see Options.Reserve).
	Ahead int
	// InHand is how many IDs can be issued without Redis: Remaining plus
	// the blocks held ahead.
	InHand int64
	// Rate is the rate at which IDs were issued, in IDs per second,
	// measured when a block reached its prefetch trigger (or ran out with
	// none fetched) over the IDs issued since the previous measure; 0
	// before the first.
	Rate float64
	// Runway is how long InHand lasts at Rate: how long Next can go on
	// without a successful fetch (a failover, Redis down); 0 while Rate is
	// unknown.
	Runway time.Duration
	// FetchTime is how long fetches take, from request to block in hand:
	// the longest of recent ones, decaying by 1/8 per fetch. It is a round
	// trip (two in auto mode while no replica was seen: INFO, then INCRBY)
	// plus the time the fetching goroutine waited for a thread, hundreds of
	// milliseconds when callers keep every P busy. A fetch starts with at
	// least 4 × FetchTime × Rate IDs in hand, and blocks grow to twice
	// that (within MaxBlock), so that such a fetch still lands before the
	// IDs run out.
	FetchTime time.Duration
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
	// Each read once, so that the figures add up under concurrent Next.
	used, held := b.issued(), a.heldLocked()
	st := Stats{
		Issued:       a.retired + used - held,
		Blocks:       a.stats.blocks,
		RoundTrips:   a.stats.roundTrips,
		FetchErrors:  a.stats.fetchErrors,
		Unreplicated: a.stats.unreplicated,
		Failing:      a.failing,
		LastError:    a.failure,
		Replicas:     a.want,
		Waits:        a.stats.waits,
		Regressions:  a.stats.regressions,
		BlockSize:    a.size,
		Remaining:    b.size - used + held,
		Prefetched:   len(a.ready) > 0,
		Ahead:        len(a.ready),
		InHand:       b.size - used + held + a.readyIDs,
		Rate:         a.rate,
		FetchTime:    a.lag,
		HighWater:    a.highWater,
	}
	if a.rate > 0 {
		st.Runway = time.Duration(float64(st.InHand) / a.rate * float64(time.Second))
	}
	return st
}
