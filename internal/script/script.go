// Package script is abacus' one way to run a Lua script: EVALSHA, and
// EVAL (which caches the script again) when the server answers NOSCRIPT,
// as go-redis' Script.Run does; alone, or behind a WAIT on the same
// connection. (Package flush pipelines its scripts itself.)
package script

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/replicas"
)

// IsNoScript reports whether err is the server's "script not cached"
// (a new or restarted server, a failover, SCRIPT FLUSH).
func IsNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// Run runs s through c and returns its reply and the round trips it took:
// 1, or 2 when the server had not cached the script.
func Run(ctx context.Context, c redis.Scripter, s *redis.Script, keys []string, args ...any) (*redis.Cmd, int) {
	cmd := s.EvalSha(ctx, c, keys, args...)
	if !IsNoScript(cmd.Err()) {
		return cmd, 1
	}
	return s.Eval(ctx, c, keys, args...), 2
}

// RunWait runs s followed by WAIT want (want > 0) in one pipeline on one
// connection to the master owning key (replicas.Pipeline), so that WAIT
// counts the replicas that have the script's writes. It returns the
// script's reply (whose own error is the script's), the replicas that
// acknowledged, the round trips made, and err: the pipeline's or WAIT's
// failure, or nil. A script the server had not cached costs a second
// pipeline, with EVAL.
func RunWait(ctx context.Context, rdb redis.UniversalClient, key string, want int, timeout time.Duration,
	s *redis.Script, keys []string, args ...any) (cmd *redis.Cmd, acked int, rts int, err error) {
	for _, eval := range []bool{false, true} {
		pipe, err := replicas.Pipeline(ctx, rdb, key)
		if err != nil {
			return nil, 0, rts, err
		}
		if eval {
			cmd = s.Eval(ctx, pipe, keys, args...)
		} else {
			cmd = s.EvalSha(ctx, pipe, keys, args...)
		}
		// WAIT's timeout 0 would mean "forever": send at least 1ms.
		wait := pipe.Do(ctx, "WAIT", want, max(timeout.Milliseconds(), 1))
		_, err = pipe.Exec(ctx)
		rts++
		if !eval && IsNoScript(cmd.Err()) {
			continue // nothing ran; send the body this time
		}
		if cmd.Err() != nil {
			return cmd, 0, rts, nil
		}
		n, werr := wait.Int64()
		if err == nil {
			err = werr
		}
		return cmd, int(n), rts, err
	}
	panic("unreachable")
}
