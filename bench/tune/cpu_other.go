//go:build !unix

package tune

import "time"

// cpuTime is unknown without getrusage; CPU figures read 0.
func cpuTime() time.Duration { return 0 }
