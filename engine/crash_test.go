package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// The crash test's writer runs in a child process (this test binary, run
// again with crashChildEnv set) that publishes what it has added through a
// shared memory map, so the parent knows the true sums after a SIGKILL.
const (
	crashChildEnv = "ABACUS_CRASH_CHILD"
	crashKeys     = 64
	crashInterval = 100 * time.Millisecond
	// Layout of the map, in int64 words: the true sum per key, then the
	// child's Stats().MaxFlushDuration in ns.
	crashWords = crashKeys + 1
)

// sharedSums maps path into memory as crashWords int64 words, shared with
// the other process. The mapping lives until the process exits.
func sharedSums(path string) ([]atomic.Int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(crashWords * 8); err != nil {
		return nil, err
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, crashWords*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*atomic.Int64)(unsafe.Pointer(&b[0])), crashWords), nil
}

// TestMain runs the child process of the crash test when
// this binary was started as one, and the tests otherwise, with a Redis for
// the examples.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(redistest.MainWithRedis(m, "^Example", func(url string) { exampleURL = url }))
}

// crashChild is the writer process: it adds until it is killed.
func crashChild(path string) {
	sums, err := sharedSums(path)
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("ABACUS_CRASH_REDIS")})
	e, err := engine.New(rdb, engine.Options{Namespace: os.Getenv("ABACUS_CRASH_NS"), FlushInterval: crashInterval})
	if err != nil {
		panic(err)
	}
	for g := range 4 {
		go func() {
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for i := 0; ; i++ {
				k := r.IntN(crashKeys)
				d := 1 + r.Int64N(10)
				// Published before the Add, so the map is never behind
				// what the engine could have flushed.
				sums[k].Add(d)
				c, _ := e.Counter(fmt.Sprint("c", k))
				c.Add(d)
				if i%64 == 0 {
					time.Sleep(50 * time.Microsecond) // a paced writer, not a spin
				}
			}
		}()
	}
	for {
		sums[crashKeys].Store(int64(e.Stats().MaxFlushDuration))
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCrashLosesAtMostOneInterval kills a writer process with SIGKILL
// mid-run: Redis must hold no more than the true sums (nothing counted
// twice) and the shortfall must be within what the writer added in its
// last flush interval plus one flush.
func TestCrashLosesAtMostOneInterval(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	ns := redistest.Prefix(t)
	mapPath := filepath.Join(t.TempDir(), "sums")
	sums, err := sharedSums(mapPath)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"="+mapPath, "ABACUS_CRASH_REDIS="+srv.Addr, "ABACUS_CRASH_NS="+ns)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	total := func() (n int64) {
		for k := range crashKeys {
			n += sums[k].Load()
		}
		return n
	}
	redistest.WaitFor(t, "the writer's first flushes", func() bool {
		n, _ := rdb.Get(context.Background(), ns+"c0").Int64()
		return n > 0
	})
	// Record the writer's progress for a while, then kill it.
	type sample struct {
		at    time.Time
		total int64
	}
	var history []sample
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		history = append(history, sample{time.Now(), total()})
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	cmd.Wait()

	maxFlush := time.Duration(sums[crashKeys].Load())
	var trueSum, inRedis int64
	for k := range crashKeys {
		want := sums[k].Load()
		got, err := rdb.Get(context.Background(), fmt.Sprint(ns, "c", k)).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		if got > want {
			t.Errorf("key c%d: Redis %d > true sum %d: counted twice", k, got, want)
		}
		trueSum += want
		inRedis += got
	}
	// What the writer added in the bound's window before the kill. The
	// scheduling slack covers a timer firing late on a busy 2-core machine.
	const slack = 25 * time.Millisecond
	window := crashInterval + maxFlush + slack
	var before int64
	for _, s := range history {
		if s.at.Before(killed.Add(-window)) {
			before = s.total
		}
	}
	shortfall := trueSum - inRedis
	bound := trueSum - before
	t.Logf("true sum %d, in Redis %d: shortfall %d; added in the last %v (interval %v + max flush %v + slack %v): %d",
		trueSum, inRedis, shortfall, window, crashInterval, maxFlush, slack, bound)
	if shortfall < 0 || shortfall > bound {
		t.Fatalf("shortfall %d outside [0, %d]", shortfall, bound)
	}
}
