package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/lease"
)

// recordsLease names the lease whose holder collects stale writer records.
const recordsLease = "records"

// upkeep is the engine's housekeeping besides flushing, in one goroutine:
// it checks that the server's eviction policy cannot evict abacus' state
// (at start and every round, reporting a change through OnError), and,
// in exactly-once mode, every round after the first collects the writer
// records of engines idle for RecordTTL, one engine at a time under a lease.
type upkeep struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (e *Engine) startUpkeep() {
	ctx, cancel := context.WithCancel(context.Background())
	e.upkeep = upkeep{cancel: cancel, done: make(chan struct{})}
	go e.runUpkeep(ctx)
}

// stopUpkeep ends the upkeep goroutine and waits for it.
func (e *Engine) stopUpkeep() {
	e.upkeep.cancel()
	<-e.upkeep.done
}

// upkeepEvery is the period of the upkeep rounds: a quarter of RecordTTL,
// so a record is deleted within 1¼ RecordTTL of its writer's last batch.
func (e *Engine) upkeepEvery() time.Duration { return max(e.opts.RecordTTL/4, time.Second) }

func (e *Engine) runUpkeep(ctx context.Context) {
	defer close(e.upkeep.done)
	var reported string
	for {
		switch err := e.evictionRisk(ctx); {
		case err == nil:
			reported = ""
		case err.Error() != reported:
			reported = err.Error()
			e.report(err)
			e.log(slog.LevelWarn, "redis may evict abacus' state", "err", err)
		}
		// Jitter keeps engines started together from contending at once.
		// The first collection waits a period too: it scans the keyspace,
		// which an engine starting up should not do before its first
		// flush, nor every engine of a fleet restarted at once.
		d := e.upkeepEvery()
		select {
		case <-ctx.Done():
			return
		case <-time.After(d*3/4 + rand.N(d/2+1)):
		}
		if e.opts.Delivery == flush.ExactlyOnce {
			e.collectRecords(ctx)
		}
	}
}

// evictionRisk returns an error when the server's maxmemory policy can
// evict abacus' state, or does not say; nil otherwise, and when Redis
// cannot be reached (the flusher reports that).
func (e *Engine) evictionRisk(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.FlushTimeout)
	defer cancel()
	err := flush.CheckEviction(ctx, e.rdb, e.writesTTLKeys())
	if errors.Is(err, flush.ErrEvictable) || errors.Is(err, flush.ErrPolicyUnknown) {
		return fmt.Errorf("engine: %w", err)
	}
	return nil
}

// writesTTLKeys reports whether e writes keys with a TTL, which a
// volatile-* policy can evict: counters with one (Options.KeyTTL, or
// CounterOptions.TTL), or the token keys of retry-safe adds, once AddOnce
// was called.
func (e *Engine) writesTTLKeys() bool {
	if e.opts.KeyTTL > 0 || e.once.stats().Adds > 0 {
		return true
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, sp := range e.special {
		if sp.ttlMillis > 0 {
			return true
		}
	}
	return false
}

// collectRecords deletes stale writer records if this engine obtains the
// records lease.
func (e *Engine) collectRecords(ctx context.Context) {
	ttl := max(e.opts.FlushTimeout, 10*time.Second)
	l, err := lease.TryAcquire(ctx, e.rdb, recordsLease, ttl, lease.Options{
		KeyPrefix: e.opts.Namespace + "lease:", AutoRenew: true,
	})
	if err != nil {
		return // held by another engine, or Redis is down: the flusher reports that
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.FlushTimeout)
		defer cancel()
		l.Release(ctx)
	}()
	got, err := flush.CollectRecords(l.Context(), e.rdb, e.opts.Namespace+"writer:", e.opts.RecordTTL)
	if err != nil && l.Err() == nil && ctx.Err() == nil {
		e.report(fmt.Errorf("engine: collect writer records: %w", err))
	}
	e.recordsCollected.Add(uint64(got.Deleted))
	if got.Deleted > 0 {
		e.log(slog.LevelInfo, "stale writer records collected", "deleted", got.Deleted, "idle_for", e.opts.RecordTTL)
	}
}

// log sends a lifecycle event to Options.Logger, if any.
func (e *Engine) log(level slog.Level, msg string, args ...any) {
	if e.opts.Logger != nil {
		e.opts.Logger.Log(context.Background(), level, msg, args...)
	}
}

func (e *Engine) report(err error) {
	if e.opts.OnError != nil {
		e.opts.OnError(err)
	}
}
