package invalid_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
)

var errInvalid = errors.New("pkg: invalid argument")

type options struct {
	A, B time.Duration
	N    int
	S    string
	name string
}

func TestError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{invalid.New(errInvalid, "name", "", "must not be empty"), `pkg: invalid name "": must not be empty`},
		{invalid.New(errInvalid, "ttl", -time.Second, "must be at least 1ms"), `pkg: invalid ttl -1s: must be at least 1ms`},
		{invalid.New(errInvalid, "name", strings.Repeat("x", 100), "too long"),
			`pkg: invalid name "` + strings.Repeat("x", 40) + `…" (100 bytes): too long`},
		{invalid.Client(errInvalid, nil), `pkg: invalid client nil: a Redis client is required`},
		{invalid.Client(errInvalid, (*redis.Client)(nil)), `pkg: invalid client nil: a Redis client is required`},
		{invalid.Client(errInvalid, redis.NewRing(&redis.RingOptions{})), `pkg: invalid client "*redis.Ring": a Ring routes each command by its own key, splitting what must go to one node; use a Client, a failover Client or a ClusterClient`},
		{invalid.Name(errInvalid, "key", strings.Repeat("k", invalid.MaxNameLen+1)),
			`pkg: invalid key "` + strings.Repeat("k", 40) + `…" (1025 bytes): must be at most 1024 bytes`},
		{invalid.NonNegative(errInvalid, "Options", options{A: 0, B: -1, N: -1}, "N"),
			`pkg: invalid Options.B -1ns: must not be negative (zero means the default)`},
		{invalid.NonNegative(errInvalid, "Options", options{N: -2}),
			`pkg: invalid Options.N -2: must not be negative (zero means the default)`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
		if !errors.Is(tt.err, errInvalid) {
			t.Errorf("errors.Is(%v, the package's sentinel) = false; want true", tt.err)
		}
		var ie *invalid.Error
		if !errors.As(tt.err, &ie) {
			t.Errorf("errors.As(%v, *invalid.Error) = false; want true", tt.err)
		}
	}
}

func TestValidPasses(t *testing.T) {
	if err := invalid.Name(errInvalid, "name", strings.Repeat("n", invalid.MaxNameLen)); err != nil {
		t.Errorf("Name(1024 bytes) = %v; want nil", err)
	}
	if err := invalid.NonNegative(errInvalid, "Options", options{A: 1, N: -1, name: "x"}, "N"); err != nil {
		t.Errorf("NonNegative(N negative but excepted) = %v; want nil", err)
	}
}
