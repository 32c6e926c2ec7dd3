//go:build !race

package shard

// rotatingNames: see race_test.go.
const rotatingNames = 1_000_000

// coldKeys: see race_test.go. The README's bytes-per-key figure is this
// million.
const coldKeys = 1_000_000
