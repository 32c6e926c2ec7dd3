// Package tune finds the flush interval for a deployment: it runs a load
// profile through an abacus engine at each interval of a sweep and
// measures what the choice costs and buys.
//
// For every interval, Run starts a fresh engine (fresh keys), drives it
// with Options.Goroutines adding at Options.Rate in total over
// Options.Keys counters chosen with a Zipf skew, and measures:
//
//   - Redis load: commands/s and request bytes/s as the server counts them
//     (INFO commandstats and total_net_input_bytes deltas), without the
//     measurement's own GET and INFO requests;
//   - staleness as a reader of Redis sees it: probe goroutines add to probe
//     counters at random moments and poll Redis with GET until the value
//     appears; p50, p99 and max of those delays (their resolution is the
//     poll period, reported as Step.Resolution);
//   - process CPU (user+system, getrusage) in cores, load generator and
//     probes included (they cost the same at every interval, so the
//     differences are the engine's);
//   - the worst-case loss on crash: the adds of one staleness bound,
//     Rate × (interval + longest flush), which a process killed without
//     Close loses.
//
// Each step ends with Close and checks every key in Redis against what was
// added (Step.Exact). Recommend picks, among the intervals whose staleness
// bound (the larger of the observed max and interval + longest flush)
// meets a target, the one with the least Redis commands/s. Plot draws the
// trade-off with gonum.org/v1/plot; WriteCSV and WriteTable print it.
//
// The figures depend on the machine and on whatever else it runs; they are
// for choosing an order of magnitude, not for regression tests.
package tune
