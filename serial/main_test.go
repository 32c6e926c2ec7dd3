package serial_test

import (
	"os"
	"testing"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// exampleURL is the Redis the Example functions use, set once by TestMain
// before any test runs and only read afterwards.
var exampleURL string

// redisExamples matches the examples that need Redis.
const redisExamples = "^(Example|ExampleAllocator_.*|ExampleReseed)$"

// TestMain doubles as the entry point of the child processes of
// TestManyProcessesNeverDuplicate (see childMain), and gives the Example
// functions, which cannot skip, a Redis: REDIS_URL, or a redis-server
// spawned for this binary. Without either they are skipped with a notice,
// or fail under REQUIRE_REDIS=1 like every Redis test.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(redistest.MainWithRedis(m, redisExamples, func(url string) { exampleURL = url }))
}

// exampleClient returns a client for the examples' Redis.
func exampleClient() *redis.Client {
	opt, err := redis.ParseURL(exampleURL)
	if err != nil {
		panic(err) // TestMain checked it; examples have no *testing.T
	}
	return redis.NewClient(opt)
}
