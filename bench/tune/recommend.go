package tune

import (
	"fmt"
	"time"
)

// Recommendation is the interval Recommend chose and why.
type Recommendation struct {
	// Step is the chosen step; nil when no interval met the target.
	Step *Step
	// Reason says why, in a sentence.
	Reason string
}

// Recommend returns, among the steps whose Bound is at most maxStaleness
// and whose totals were exact, the one with the least Redis commands per
// second (the shorter interval on a tie).
func (r *Report) Recommend(maxStaleness time.Duration) Recommendation {
	var best *Step
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.Bound > maxStaleness || !s.Exact {
			continue
		}
		if best == nil || s.RedisCommandsPerSec < best.RedisCommandsPerSec {
			best = s
		}
	}
	if best == nil {
		tightest := time.Duration(0)
		for _, s := range r.Steps {
			if tightest == 0 || s.Bound < tightest {
				tightest = s.Bound
			}
		}
		return Recommendation{Reason: fmt.Sprintf(
			"no interval keeps staleness within %v (the tightest bound seen was %v); "+
				"lower the load, shorten the sweep's intervals, or relax the target", maxStaleness, tightest)}
	}
	return Recommendation{Step: best, Reason: fmt.Sprintf(
		"flush interval %v: staleness bound %v (p99 %v) within %v, with the least Redis load "+
			"among those that meet it: %.0f commands/s, %.0f bytes/s; a crash can lose about %.0f adds",
		best.Interval, best.Bound.Round(time.Millisecond), best.StalenessP99.Round(time.Millisecond),
		maxStaleness, best.RedisCommandsPerSec, best.RedisBytesPerSec, best.WorstLoss)}
}
