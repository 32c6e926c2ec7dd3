package lease

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// TestFailoversUnderLoad contends for one lease from 8 goroutines over 4
// clients, with default Options, while the lease's master fails over three
// times: on Sentinel (SENTINEL FAILOVER; SIGKILL of the master) and on a
// Redis Cluster with a replica per master (CLUSTER FAILOVER; SIGKILL).
// Every holder writes to a fenced store while it holds the lease. Checked
// (owners): no lease is obtained while another holder's context is live,
// every fence obtained is above all fences handed out before, and the
// store never refuses a live owner; and leases keep being obtained after
// every failover.
func TestFailoversUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts replicated deployments and fails them over")
	}
	sentinel := func(fail func(*redistest.SentinelGroup, testing.TB)) func(*testing.T, string) ([]redis.UniversalClient, func()) {
		return func(t *testing.T, _ string) ([]redis.UniversalClient, func()) {
			g := redistest.StartSentinel(t, redistest.SentinelOptions{Args: noSyncDelay})
			var clients []redis.UniversalClient
			for range 4 {
				clients = append(clients, g.Client(t))
			}
			return clients, func() { fail(g, t) }
		}
	}
	cluster := func(fail func(*redistest.Cluster, testing.TB, int)) func(*testing.T, string) ([]redis.UniversalClient, func()) {
		return func(t *testing.T, key string) ([]redis.UniversalClient, func()) {
			c := redistest.StartCluster(t, redistest.ClusterOptions{Replicas: 1})
			var clients []redis.UniversalClient
			for range 4 {
				clients = append(clients, c.Client(t))
			}
			// The range whose master has the lease.
			slot, i := int(hashSlot(key)), 0
			for first, last := c.Slots(i); slot < first || slot > last; first, last = c.Slots(i) {
				i++
			}
			return clients, func() { fail(c, t, i) }
		}
	}
	tests := []struct {
		name  string
		start func(t *testing.T, key string) (clients []redis.UniversalClient, fail func())
	}{
		{"Sentinel/Failover", sentinel((*redistest.SentinelGroup).Failover)},
		{"Sentinel/KillMaster", sentinel((*redistest.SentinelGroup).KillMaster)},
		{"Cluster/Failover", cluster((*redistest.Cluster).Failover)},
		{"Cluster/KillMaster", cluster((*redistest.Cluster).KillMaster)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := redistest.Prefix(t)
			key, _ := Keys(prefix, "job")
			clients, fail := tt.start(t, key)
			o := Options{
				KeyPrefix: prefix,
				AutoRenew: true,
				// Wide, so that a late timer on a loaded machine is not
				// mistaken for an overlap.
				SafetyMargin:  500 * time.Millisecond,
				MaxRetryDelay: 20 * time.Millisecond,
			}
			const ttl = 2 * time.Second
			var (
				own      owners
				obtained atomic.Int64
				attempts atomic.Int64
				wg       sync.WaitGroup
			)
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rdb := clients[i%len(clients)]
					for ctx.Err() == nil {
						l, err := Acquire(ctx, rdb, "job", ttl, o)
						if err != nil {
							if ctx.Err() == nil {
								t.Errorf("Acquire: %v", err)
							}
							return
						}
						own.obtained(t, l)
						obtained.Add(1)
						attempts.Add(l.Stats().Attempts)
						// Mostly short holds; some across renewals.
						hold := time.Duration(rand.N(20)) * time.Millisecond
						if rand.N(10) == 0 {
							hold = time.Second
						}
						for end := time.Now().Add(hold); l.Err() == nil; time.Sleep(5 * time.Millisecond) {
							own.write(t, l)
							if time.Now().After(end) {
								break
							}
						}
						// Errors expected around a failover: the key
						// then expires by its TTL.
						l.Release(context.WithoutCancel(ctx))
					}
				}()
			}
			progress := func(what string) {
				t.Helper()
				from := obtained.Load()
				redistest.WaitFor(t, what, func() bool { return obtained.Load() >= from+20 })
			}
			progress("20 leases before the first failover")
			for range 3 {
				fail()
				progress("20 leases after a failover")
			}
			stop()
			wg.Wait()

			overlaps, notAbove, rejected := own.violations()
			own.mu.Lock()
			n, writes := len(own.leases), own.writes
			own.mu.Unlock()
			t.Logf("%d leases in %d attempts, %d fenced writes; %d overlaps, %d fences not above, %d live owners refused",
				n, attempts.Load(), writes, overlaps, notAbove, rejected)
		})
	}
}
