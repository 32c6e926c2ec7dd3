package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-go/abacus/lease"
)

// leaseState is what a lease's metrics are read from.
type leaseState struct {
	lease.Stats
	held     float64 // 1 or 0
	fence    int64
	deadline float64 // seconds since the epoch while held, else 0
}

// leaseStatTable lists a lease's metrics; see the package comment.
var leaseStatTable = []stat[leaseState]{
	counter("attempts_total", "Acquisition attempts, the successful one included.", func(s leaseState) float64 { return float64(s.Attempts) }),
	counter("round_trips_total", "Redis round trips made for the lease.", func(s leaseState) float64 { return float64(s.RoundTrips) }),
	counter("renewals_total", "Successful refreshes, by Refresh or the watchdog.", func(s leaseState) float64 { return float64(s.Renewals) }),
	gauge("held", "1 while the lease is held, 0 once it ended.", func(s leaseState) float64 { return s.held }),
	gauge("fence", "Fencing token of the acquisition.", func(s leaseState) float64 { return float64(s.fence) }),
	gauge("deadline_timestamp_seconds", "Local deadline of the lease, in seconds since the Unix epoch, unless renewed first; 0 once it ended.", func(s leaseState) float64 { return s.deadline }),
}

func leaseStats(l *lease.Lease) part {
	return newFamily("lease", leaseStatTable, prometheus.Labels{"lease": l.Name()}, func() leaseState {
		s := leaseState{Stats: l.Stats(), fence: l.Fence()}
		if l.Err() == nil {
			s.held, s.deadline = 1, float64(l.Deadline().UnixNano())/1e9
		}
		return s
	})
}
