package serial

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/logtest"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestLoggerSeesFetchFailingAndRecovered: a spell of failed fetches is
// logged once when it starts and once when a fetch succeeds again, with
// how many failed; the retries between are not.
func TestLoggerSeesFetchFailingAndRecovered(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "failing"
	rdb.Set(ctx, key, "oops", 0)
	var rec logtest.Recorder
	a := newAllocator(t, rdb, key, Options{MinBlock: 10, MaxBlock: 10, Logger: rec.Logger()})
	for range 3 {
		if _, err := a.Next(ctx); !errors.Is(err, ErrNotInteger) {
			t.Fatalf("Next() error = %v; want ErrNotInteger", err)
		}
	}
	rec.Want(t, 1, slog.LevelWarn, "block fetch failing; retrying", "key", key)
	rec.Want(t, 0, slog.LevelInfo, "block fetch recovered")

	rdb.Set(ctx, key, 1000, 0)
	if id, err := a.Next(ctx); err != nil || id != 1001 {
		t.Fatalf("Next() after repair = %d, %v; want 1001, nil", id, err)
	}
	rec.Want(t, 1, slog.LevelInfo, "block fetch recovered", "key", key, "failed_fetches", "3", "discarded_blocks", "0")
	rec.Want(t, 1, slog.LevelWarn, "block fetch failing; retrying")
}

// TestLoggerSeesReplicasAndDiscardedBlocks: in auto mode, seeing a
// replica is logged; with the replica stopped, the first discarded block
// of the spell is logged, not every one; the recovery counts them.
// ReplicaTimeout is short so that the discards come fast; the fetches that
// need the replica to answer in time are retried until one does, since a
// loaded machine can hold its answer back longer than that.
func TestLoggerSeesReplicasAndDiscardedBlocks(t *testing.T) {
	const discarded, recovered = "block discarded: too few replicas acknowledged it; retrying", "block fetch recovered"
	master, replica := startReplicated(t)
	rdb := master.Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "discards"
	var rec logtest.Recorder
	a := newAllocator(t, rdb, key, Options{MinBlock: 10, MaxBlock: 10,
		ReplicaTimeout: 100 * time.Millisecond, Reserve: -1, Logger: rec.Logger()})
	nextAcknowledged(t, a, "with the replica up")
	rec.Want(t, 1, slog.LevelInfo, "replicas seen; blocks now wait for them", "key", key, "replicas", "1")
	// Blocks the replica was too slow for are a spell of their own, logged
	// before the one this test makes.
	discardedBefore, recoveredBefore := len(rec.Find(discarded)), len(rec.Find(recovered))

	replica.Stop()
	for {
		_, err := a.Next(ctx)
		if errors.Is(err, ErrNotReplicated) {
			break
		}
		if err != nil {
			t.Fatalf("Next() with the replica down: %v; want IDs in hand, then ErrNotReplicated", err)
		}
	}
	// Every Next now fetches, and fails, at once: several discards.
	for range 2 {
		if _, err := a.Next(ctx); !errors.Is(err, ErrNotReplicated) {
			t.Fatalf("Next() with the replica down: %v; want ErrNotReplicated", err)
		}
	}
	rec.Want(t, discardedBefore+1, slog.LevelWarn, discarded, "key", key)

	replica.Restart()
	waitOnline(t, rdb)
	nextAcknowledged(t, a, "with the replica back")
	got := rec.Want(t, recoveredBefore+1, slog.LevelInfo, recovered, "key", key)
	if n, _ := strconv.Atoi(got.Attrs["discarded_blocks"]); n < 3 || got.Attrs["failed_fetches"] != got.Attrs["discarded_blocks"] {
		t.Errorf("recovery %v; want at least 3 discarded blocks, every failed fetch one", got)
	}
	rec.Want(t, 0, slog.LevelInfo, "block fetch failing; retrying")
	rec.Want(t, 1, slog.LevelInfo, "replicas seen; blocks now wait for them")
}

// TestLoggerFixedReplicasSeeNone: a fixed Replicas waits from the first
// fetch on, so nothing changes when a replica is seen, and a master
// without one must not be logged as having been seen with one.
func TestLoggerFixedReplicasSeeNone(t *testing.T) {
	rdb := redistest.Start(t, redistest.Options{}).Client(t) // no replica
	key := redistest.Prefix(t) + "fixed"
	var rec logtest.Recorder
	a := newAllocator(t, rdb, key, Options{Replicas: 1, ReplicaTimeout: 100 * time.Millisecond, Logger: rec.Logger()})
	if id, err := a.Next(context.Background()); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("Next() with no replica = %d, %v; want ErrNotReplicated", id, err)
	}
	rec.Want(t, 1, slog.LevelWarn, "block discarded: too few replicas acknowledged it; retrying", "key", key)
	rec.Want(t, 0, slog.LevelInfo, "replicas seen; blocks now wait for them")
}

// nextAcknowledged calls a.Next until it returns an ID; every error but
// a block discarded for want of replicas fails t.
func nextAcknowledged(t *testing.T, a *Allocator, when string) {
	t.Helper()
	redistest.WaitFor(t, "a block a replica acknowledged, "+when, func() bool {
		_, err := a.Next(context.Background())
		if err != nil && !errors.Is(err, ErrNotReplicated) {
			t.Fatalf("Next() %s: %v; want an ID or ErrNotReplicated", when, err)
		}
		return err == nil
	})
}

// TestLoggerSeesRegressionAndResume: a block below the IDs already issued
// is logged as Redis losing writes, at Error, and Resume is logged.
func TestLoggerSeesRegressionAndResume(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	key := redistest.Prefix(t) + "regression"
	var rec logtest.Recorder
	a := newAllocator(t, rdb, key, Options{MinBlock: 10, MaxBlock: 10, Logger: rec.Logger()})
	if _, err := a.Next(ctx); err != nil {
		t.Fatal(err)
	}
	quiesce(t, a)
	hw := a.Stats().HighWater
	rdb.Del(ctx, key) // Redis lost the key: the next block starts at 1 again
	var err error
	for err == nil {
		_, err = a.Next(ctx)
	}
	if !errors.Is(err, ErrRegression) {
		t.Fatalf("Next() after the key was lost = %v; want ErrRegression", err)
	}
	rec.Want(t, 1, slog.LevelError, "redis lost writes", "key", key, "err", err.Error())

	if err := a.Resume(ctx, 0); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	rec.Want(t, 1, slog.LevelInfo, "resumed after a regression", "key", key, "floor", strconv.FormatInt(hw, 10))
}
