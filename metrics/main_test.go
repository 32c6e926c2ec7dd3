package metrics_test

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// exampleURL is the Redis the Example functions use, set once by TestMain
// before any test runs and only read afterwards.
var exampleURL string

// TestMain gives the Example functions, which cannot skip, a Redis:
// REDIS_URL, or a redis-server spawned for this binary. Without either
// they are skipped with a notice, or fail under REQUIRE_REDIS=1.
func TestMain(m *testing.M) {
	os.Exit(redistest.MainWithRedis(m, "^Example$", func(url string) { exampleURL = url }))
}

// exampleClient returns a client for the examples' Redis.
func exampleClient() *redis.Client {
	opt, err := redis.ParseURL(exampleURL)
	if err != nil {
		panic(err) // TestMain checked it; examples have no *testing.T
	}
	return redis.NewClient(opt)
}
