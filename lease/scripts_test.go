package lease

import (
	"context"
	"testing"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestScripts(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "{k}"
	tests := []struct {
		name   string
		value  string // "" means the key is missing
		script *redis.Script
		args   []any
		want   int64
		after  string // the key's value afterwards, "" for missing
	}{
		{"refresh own", "tok", refreshScript, []any{"tok", 60000}, 1, "tok"},
		{"refresh other's", "other", refreshScript, []any{"tok", 60000}, 0, "other"},
		{"refresh missing", "", refreshScript, []any{"tok", 60000}, 0, ""},
		{"release own", "tok", releaseScript, []any{"tok"}, 1, ""},
		{"release other's", "other", releaseScript, []any{"tok"}, 0, "other"},
		{"release missing", "", releaseScript, []any{"tok"}, 0, ""},
		{"ttl other's", "other", ttlScript, []any{"tok"}, -3, "other"},
		{"ttl missing", "", ttlScript, []any{"tok"}, -3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb.Del(ctx, key)
			if tt.value != "" {
				rdb.Set(ctx, key, tt.value, 0)
			}
			got, _, err := runScript(ctx, rdb, tt.script, []string{key}, tt.args...)
			if err != nil || got != tt.want {
				t.Fatalf("script on %q = %d, %v; want %d", tt.value, got, err, tt.want)
			}
			if v, _ := rdb.Get(ctx, key).Result(); v != tt.after {
				t.Errorf("key afterwards = %q; want %q", v, tt.after)
			}
		})
	}
}

func TestRunScriptLoadsOnMiss(t *testing.T) {
	// A private server: SCRIPT FLUSH would disturb others on REDIS_URL.
	rdb := redistest.Start(t, redistest.Options{}).Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "{k}"
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	tests := []struct {
		name       string
		roundTrips int
	}{
		{"uncached: EVALSHA, NOSCRIPT, EVAL", 2},
		{"cached: EVALSHA", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rts, err := runScript(ctx, rdb, releaseScript, []string{key}, "tok")
			if err != nil || rts != tt.roundTrips {
				t.Errorf("runScript = %d round trips, %v; want %d", rts, err, tt.roundTrips)
			}
		})
	}
}
