//go:build race

package engine_test

// slowdown scales client timeouts in fault tests: the race detector slows
// the client enough that a 100ms read timeout fires on healthy replies.
const slowdown = 5
