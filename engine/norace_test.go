//go:build !race

package engine_test

import "time"

// slowdown scales client timeouts in fault tests (see race_test.go).
const slowdown = 1

// outageKeys and longOutage size TestLongOutageMemoryStaysBounded: the race
// detector's shadow memory for 100,000 counters under 8 writers for 60 s
// took the suite past 1 GB.
const (
	outageKeys = 100_000
	longOutage = 60 * time.Second
)
