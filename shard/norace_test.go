//go:build !race

package shard

// rotatingNames: see race_test.go.
const rotatingNames = 1_000_000
