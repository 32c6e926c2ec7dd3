//go:build race

package shard

// rotatingNames is how many names TestRotatingNamesKeepMemoryFlat runs
// through the table: fewer under the race detector, which multiplies the
// cost of each atomic operation.
const rotatingNames = 100_000

// coldKeys is how many keys TestColdKeyMemory creates: fewer under the race
// detector, whose shadow state for every counter's atomics lives outside
// the Go heap (so it does not skew the measurement) but costs kilobytes of
// RSS per key: 2.5 GB for a million.
const coldKeys = 100_000
