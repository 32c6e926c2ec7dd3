//go:build !race

package engine_test

// slowdown scales client timeouts in fault tests (see race_test.go).
const slowdown = 1
