//go:build race

package shard

// rotatingNames is how many names TestRotatingNamesKeepMemoryFlat runs
// through the table: fewer under the race detector, which multiplies the
// cost of each atomic operation.
const rotatingNames = 200_000
