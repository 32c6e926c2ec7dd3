package queue_test

import (
	"testing"

	"github.com/abacus-go/abacus/internal/redistest"
)

// The crash test on a real 3-master Redis Cluster: every key of the queue
// is hash-tagged {jobs}, so all scripts run on the node owning that slot.
func TestClusterCrashedConsumersLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	crashTest(t, c.Client(t), 100_000)
}
