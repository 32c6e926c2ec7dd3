//go:build race

package engine_test

import "time"

// slowdown scales client timeouts in fault tests: the race detector slows
// the client enough that a 100ms read timeout fires on healthy replies.
const slowdown = 5

// outageKeys and longOutage size TestLongOutageMemoryStaysBounded: the race
// detector's shadow memory for 100,000 counters under 8 writers for 60 s
// took the suite past 1 GB.
const (
	outageKeys = 30_000
	longOutage = 20 * time.Second
)
