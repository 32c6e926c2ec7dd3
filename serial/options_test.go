package serial

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestNewRejectsBadInput(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled: New does no I/O
	t.Cleanup(func() { rdb.Close() })
	tests := []struct {
		name  string
		rdb   redis.UniversalClient
		key   string
		opts  Options
		want  error
		field string // of the *InvalidError
	}{
		{"nil client", nil, "k", Options{}, ErrInvalid, "client"},
		{"empty key", rdb, "", Options{}, ErrInvalid, "key"},
		{"negative MinBlock", rdb, "k", Options{MinBlock: -1}, ErrInvalid, "Options.MinBlock"},
		{"negative MaxBlock", rdb, "k", Options{MaxBlock: -5}, ErrInvalid, "Options.MaxBlock"},
		{"Min above Max", rdb, "k", Options{MinBlock: 500, MaxBlock: 100}, ErrInvalid, "Options.MinBlock"},
		{"Min above default Max", rdb, "k", Options{MinBlock: 200, MaxBlock: 150}, ErrInvalid, "Options.MinBlock"},
		{"negative TargetLifetime", rdb, "k", Options{TargetLifetime: -time.Second}, ErrInvalid, "Options.TargetLifetime"},
		{"threshold negative", rdb, "k", Options{PrefetchThreshold: -0.1}, ErrInvalid, "Options.PrefetchThreshold"},
		{"threshold one", rdb, "k", Options{PrefetchThreshold: 1}, ErrInvalid, "Options.PrefetchThreshold"},
		{"threshold above one", rdb, "k", Options{PrefetchThreshold: 1.5}, ErrInvalid, "Options.PrefetchThreshold"},
		{"threshold NaN", rdb, "k", Options{PrefetchThreshold: math.NaN()}, ErrInvalid, "Options.PrefetchThreshold"},
		{"negative ReplicaTimeout", rdb, "k", Options{ReplicaTimeout: -1}, ErrInvalid, "Options.ReplicaTimeout"},
		{"ReplicaTimeout beyond ReadTimeout", rdb, "k", Options{Replicas: 1, ReplicaTimeout: rdb.Options().ReadTimeout}, ErrInvalid, "Options.ReplicaTimeout"},
		// Auto (the default) may wait, so the bound applies to it too.
		{"ReplicaTimeout beyond ReadTimeout, auto", rdb, "k", Options{ReplicaTimeout: rdb.Options().ReadTimeout}, ErrInvalid, "Options.ReplicaTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.rdb, tt.key, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New(%q, %+v) error = %v; want %v", tt.key, tt.opts, err, tt.want)
			}
			if a != nil {
				t.Errorf("New returned an Allocator with error %v", err)
			}
			if tt.field == "" {
				return
			}
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Errorf("New error = %#v; want *InvalidError for %s", err, tt.field)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	fast := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ReadTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { fast.Close() })
	tests := []struct {
		name string
		rdb  redis.UniversalClient
		in   Options
		want Options // Now is checked separately
	}{
		{"zero", rdb, Options{}, Options{MinBlock: 100, MaxBlock: DefaultMaxBlock, TargetLifetime: 10 * time.Second, PrefetchThreshold: 0.5, ReplicaTimeout: 500 * time.Millisecond}},
		{"fixed size", rdb, Options{MinBlock: 64, MaxBlock: 64}, Options{MinBlock: 64, MaxBlock: 64, TargetLifetime: 10 * time.Second, PrefetchThreshold: 0.5, ReplicaTimeout: 500 * time.Millisecond}},
		{"large MinBlock lifts default MaxBlock", rdb, Options{MinBlock: 1 << 31}, Options{MinBlock: 1 << 31, MaxBlock: 1 << 31, TargetLifetime: 10 * time.Second, PrefetchThreshold: 0.5, ReplicaTimeout: 500 * time.Millisecond}},
		{"wait", rdb, Options{Replicas: 2, ReplicaTimeout: time.Second, PrefetchThreshold: 0.9, Reserve: time.Minute}, Options{MinBlock: 100, MaxBlock: DefaultMaxBlock, TargetLifetime: 10 * time.Second, PrefetchThreshold: 0.9, Replicas: 2, ReplicaTimeout: time.Second, Reserve: time.Minute}},
		// Negative is "never" and "none", kept as given.
		{"never wait, no reserve", rdb, Options{Replicas: -1, Reserve: -1}, Options{MinBlock: 100, MaxBlock: DefaultMaxBlock, TargetLifetime: 10 * time.Second, PrefetchThreshold: 0.5, Replicas: -1, ReplicaTimeout: 500 * time.Millisecond, Reserve: -1}},
		{"short ReadTimeout halves the default ReplicaTimeout", fast, Options{}, Options{MinBlock: 100, MaxBlock: DefaultMaxBlock, TargetLifetime: 10 * time.Second, PrefetchThreshold: 0.5, ReplicaTimeout: 150 * time.Millisecond}},
		{"no bound when never waiting", fast, Options{Replicas: -1, ReplicaTimeout: time.Second}, Options{MinBlock: 100, MaxBlock: DefaultMaxBlock, TargetLifetime: 10 * time.Second, PrefetchThreshold: 0.5, Replicas: -1, ReplicaTimeout: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.resolve(tt.rdb)
			if err != nil {
				t.Fatalf("resolve(%+v) error = %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resolve(%+v) = %+v; want %+v", tt.in, got, tt.want)
			}
		})
	}
}
