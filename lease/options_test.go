package lease

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestBadInput(t *testing.T) {
	// Validation happens before any I/O: this client is never dialled.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	tests := []struct {
		name  string
		rdb   redis.UniversalClient
		lease string
		ttl   time.Duration
		opts  Options
		field string
	}{
		{"nil client", nil, "a", time.Second, Options{}, "client"},
		{"empty name", rdb, "", time.Second, Options{}, "name"},
		{"long name", rdb, strings.Repeat("n", MaxNameLen+1), time.Second, Options{}, "name"},
		{"zero ttl", rdb, "a", 0, Options{}, "ttl"},
		{"negative ttl", rdb, "a", -time.Second, Options{}, "ttl"},
		{"sub-ms ttl", rdb, "a", time.Microsecond, Options{}, "ttl"},
		{"negative renew", rdb, "a", time.Second, Options{RenewInterval: -1}, "Options.RenewInterval"},
		{"renew past deadline", rdb, "a", time.Second, Options{RenewInterval: time.Second}, "Options.RenewInterval"},
		{"negative margin", rdb, "a", time.Second, Options{SafetyMargin: -1}, "Options.SafetyMargin"},
		{"margin = ttl", rdb, "a", time.Second, Options{SafetyMargin: time.Second}, "Options.SafetyMargin"},
		{"negative min delay", rdb, "a", time.Second, Options{MinRetryDelay: -1}, "Options.MinRetryDelay"},
		{"negative max delay", rdb, "a", time.Second, Options{MaxRetryDelay: -1}, "Options.MaxRetryDelay"},
		{"max < min delay", rdb, "a", time.Second, Options{MinRetryDelay: 2 * time.Second, MaxRetryDelay: time.Second}, "Options.MaxRetryDelay"},
		{"negative replica timeout", rdb, "a", time.Second, Options{ReplicaTimeout: -1}, "Options.ReplicaTimeout"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for fn, acquire := range map[string]func(context.Context, redis.UniversalClient, string, time.Duration, Options) (*Lease, error){
				"TryAcquire": TryAcquire, "Acquire": Acquire,
			} {
				l, err := acquire(ctx, tt.rdb, tt.lease, tt.ttl, tt.opts)
				var ie *InvalidError
				if l != nil || !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s(%q, %v) = %v, %v; want nil, *InvalidError", fn, tt.lease, tt.ttl, l, err)
				}
				if ie.Field != tt.field {
					t.Errorf("%s: InvalidError.Field = %q; want %q", fn, ie.Field, tt.field)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	tests := []struct {
		ttl    time.Duration
		margin time.Duration
		renew  time.Duration
		ttlOut time.Duration
	}{
		{time.Second, 12 * time.Millisecond, time.Second / 3, time.Second},
		{30 * time.Second, 302 * time.Millisecond, 10 * time.Second, 30 * time.Second},
		{1500 * time.Microsecond, 500 * time.Microsecond, 333333, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.ttl.String(), func(t *testing.T) {
			c, err := Options{}.resolve(rdb, "n", tt.ttl)
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if c.ttl != tt.ttlOut || c.SafetyMargin != tt.margin || c.RenewInterval != tt.renew {
				t.Errorf("ttl, margin, renew = %v, %v, %v; want %v, %v, %v",
					c.ttl, c.SafetyMargin, c.RenewInterval, tt.ttlOut, tt.margin, tt.renew)
			}
			if c.KeyPrefix != DefaultKeyPrefix || c.MinRetryDelay != DefaultMinRetryDelay ||
				c.MaxRetryDelay != DefaultMaxRetryDelay || c.ReplicaTimeout != DefaultReplicaTimeout {
				t.Errorf("defaults not applied: %+v", c.Options)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		prefix, name, key, fence string
	}{
		{"", "rollup", "abacus:lease:{rollup}", "abacus:lease:{rollup}:fence"},
		{"app:", "q{1}", "app:{q{1}}", "app:{q{1}}:fence"},
	}
	for _, tt := range tests {
		key, fence := Keys(tt.prefix, tt.name)
		if key != tt.key || fence != tt.fence {
			t.Errorf("Keys(%q, %q) = %q, %q; want %q, %q", tt.prefix, tt.name, key, fence, tt.key, tt.fence)
		}
		if a, b := hashSlot(key), hashSlot(fence); a != b {
			t.Errorf("Keys(%q, %q): slots %d and %d differ", tt.prefix, tt.name, a, b)
		}
	}
}

// hashSlot is Redis Cluster's key slot, to check the hash tags.
func hashSlot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for _, b := range []byte(key) {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

func TestRingIsRejected(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	var ie *InvalidError
	if _, err := TryAcquire(context.Background(), ring, "a", time.Second, Options{}); !errors.Is(err, ErrInvalid) || !errors.As(err, &ie) || ie.Field != "client" {
		t.Fatalf("TryAcquire(Ring) = %v; want an *InvalidError for the client", err)
	}
}
