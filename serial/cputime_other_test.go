//go:build !unix

package serial_test

import "time"

// cpuTime is 0 where the process's CPU time is not read: benchmarks then
// report no cpu-ns/op.
func cpuTime() time.Duration { return 0 }
