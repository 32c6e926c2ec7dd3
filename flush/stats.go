package flush

import (
	"sync"
	"time"
)

// Stats describes a Flusher's work since it was created.
type Stats struct {
	Flushes       uint64 // flush cycles run
	FailedFlushes uint64 // cycles that left batches pending or met a transport error
	RoundTrips    uint64 // pipelines sent
	Commands      uint64 // Redis commands sent (script calls; or INCRBY, PEXPIRE and ZADD)
	KeysFlushed   uint64 // key deltas Redis applied
	DeltaFlushed  int64  // sum of the deltas Redis applied
	Resent        uint64 // batches sent again after an unknown outcome
	Duplicates    uint64 // resent batches Redis had applied already (not applied again)
	KeyErrors     uint64 // deltas refused for their key (see KeyError)
	LostBatches   uint64 // batches given up in doubt (see LostError)
	LostDelta     int64  // sum of their deltas
	// Moved counts deltas a Cluster master refused because it did not
	// serve their key (see ErrMoved): none was applied, and each went back
	// to the Source, to be sent to the master serving it.
	Moved uint64
	// Unreplicated counts batches applied on the master while fewer
	// replicas than wanted acknowledged them: kept and resent.
	Unreplicated   uint64
	Regressions    uint64 // writer records found behind the floor (see RegressionError)
	RegressedDelta int64  // the deltas known lost with them

	PendingBatches int   // sent batches whose outcome is not known yet
	PendingKeys    int   // keys in those batches
	PendingDelta   int64 // sum of their deltas

	LastFlush         time.Time     // end of the last cycle
	LastFlushDuration time.Duration // duration of the last cycle
	MaxFlushDuration  time.Duration
	// MaxStaleness is the observed staleness bound: the longest time from
	// a take from the Source that a delta could have just missed to Redis
	// confirming that delta (≈ Interval + one flush while Redis is
	// healthy).
	MaxStaleness time.Duration
	LastError    error // the last transport or key error, nil if none yet
}

// stats is Stats under a mutex; the flushing goroutine writes, Stats reads.
type stats struct {
	mu sync.Mutex
	s  Stats // guarded by mu
}

func (s *stats) update(fn func(*Stats)) {
	s.mu.Lock()
	fn(&s.s)
	s.mu.Unlock()
}

func (s *stats) get() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s
}
