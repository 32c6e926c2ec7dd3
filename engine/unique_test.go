package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/flush"
	"github.com/abacus-go/abacus/internal/faultproxy"
	"github.com/abacus-go/abacus/internal/hll"
	"github.com/abacus-go/abacus/internal/redisinfo"
	"github.com/abacus-go/abacus/internal/redistest"
)

func visitor(i int) string { return "visitor-" + strconv.Itoa(i) }

// pfaddRange adds visitors [from, to) to key with PFADD, 1,000 a command:
// the reference the engine must match.
func pfaddRange(t *testing.T, rdb redis.UniversalClient, key string, from, to int) {
	t.Helper()
	ctx := context.Background()
	pipe := rdb.Pipeline()
	for i := from; i < to; i += 1000 {
		args := make([]any, 0, 1000)
		for j := i; j < min(i+1000, to); j++ {
			args = append(args, visitor(j))
		}
		pipe.PFAdd(ctx, key, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("PFADD %s: %v", key, err)
	}
}

// redisRegisters reads key's registers as Redis sees them, with PFDEBUG
// GETREG (which turns key dense).
func redisRegisters(t *testing.T, rdb redis.UniversalClient, key string) *hll.Registers {
	t.Helper()
	vs, err := rdb.Do(context.Background(), "pfdebug", "getreg", key).Slice()
	if err != nil || len(vs) != hll.NumRegisters {
		t.Fatalf("PFDEBUG GETREG %s: %d registers, %v", key, len(vs), err)
	}
	var r hll.Registers
	for i, v := range vs {
		r[i] = uint8(v.(int64))
	}
	return &r
}

// sameHLL checks that got and want hold the same registers and count.
func sameHLL(t *testing.T, rdb redis.UniversalClient, got, want string) int64 {
	t.Helper()
	ctx := context.Background()
	gotN, err1 := rdb.PFCount(ctx, got).Result()
	wantN, err2 := rdb.PFCount(ctx, want).Result()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("PFCOUNT: %v", err)
	}
	if gotN != wantN {
		t.Errorf("PFCOUNT %s = %d; PFADD's %s = %d", got, gotN, want, wantN)
	}
	g, w := redisRegisters(t, rdb, got), redisRegisters(t, rdb, want)
	if n := differ(g, w); n > 0 {
		t.Errorf("%s and PFADD's %s differ in %d registers", got, want, n)
	}
	return gotN
}

func differ(a, b *hll.Registers) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func uniqueOrFail(t testing.TB, e *engine.Engine, name string) *engine.Unique {
	t.Helper()
	u, err := e.Unique(name)
	if err != nil {
		t.Fatalf("Unique(%q): %v", name, err)
	}
	return u
}

// TestUniqueMatchesPFADD adds members to unique counts in rounds, flushing
// after each (the first round sets the key, later ones merge into it),
// and compares every register, and the count, with PFADD of the same
// members: for a count Redis keeps sparse and one it turns dense.
func TestUniqueMatchesPFADD(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	e := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	ctx := context.Background()
	for _, n := range []int{12, 1_200, 120_000} {
		name := fmt.Sprint("uv:", n)
		u := uniqueOrFail(t, e, name)
		for round := range 3 {
			for i := round * n / 3; i < (round+1)*n/3; i++ {
				u.Add(visitor(i))
				u.AddBytes([]byte(visitor(i / 2))) // again: changes nothing
			}
			if err := e.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
		}
		ref := ns + fmt.Sprint("ref:", n)
		pfaddRange(t, rdb, ref, 0, n)
		want := sameHLL(t, rdb, e.Key(name), ref)
		if got, err := u.Count(ctx); err != nil || got != want {
			t.Errorf("%d members: Count = %d, %v; want PFCOUNT's %d", n, got, err, want)
		}
	}
	if s := e.Stats().Uniques; s.Commands != 9 || s.Merges != 3 || s.Refusals+s.Failures != 0 {
		t.Errorf("Stats().Uniques = %+v; want 9 commands, one per count per flush, 3 of them merges", s)
	}
}

// TestUniqueClusterMatchesPFADD writes unique counts spread over the slots
// of a 3-master Cluster with a replica each, from two engines, and
// compares each with PFADD.
func TestUniqueClusterMatchesPFADD(t *testing.T) {
	cluster := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	check := cluster.Client(t)
	ns := redistest.Prefix(t)
	// One engine never waits for replicas: its merges go through the
	// ClusterClient's own pipeline. The other finds the replicas and
	// follows its merges with a WAIT on each master's connection.
	var engines []*engine.Engine
	for _, replicas := range []int{-1, 0} {
		engines = append(engines, newEngine(t, cluster.Client(t), engine.Options{
			Namespace: ns, FlushInterval: 20 * time.Millisecond, Replicas: replicas,
			OnError: func(err error) { t.Logf("Replicas %d: %v", replicas, err) },
		}))
	}
	// Names with hash tags of their own, too: the scratch key must follow
	// the key's slot whatever it is.
	names := []string{"uv:a", "uv:b", "uv:c", "{post:7}:uv", "uv:{x}", "uv:}{", "uv:{}"}
	for i, name := range names {
		n := 100 * (i + 1) * (i + 1)
		for j := range n {
			uniqueOrFail(t, engines[j%2], name).Add(visitor(j))
		}
		pfaddRange(t, check, fmt.Sprint(ns, "ref:", i), 0, n)
	}
	for i, e := range engines {
		closeOrFail(t, e)
		if s := e.Stats().Uniques; (s.Waits > 0) != (i == 1) || s.Merges == 0 || s.Failures+s.Refusals > 0 {
			t.Errorf("engine %d: Stats().Uniques = %+v; want WAITs only from engine 1, and no failure", i, s)
		}
	}
	for i, name := range names {
		sameHLL(t, check, ns+name, fmt.Sprint(ns, "ref:", i))
	}
}

// TestUniqueWaitsForReplica writes through a master whose replica is
// reached through a proxy. Merges the replica did not acknowledge (its
// link silenced) are kept and sent again, and the replica ends with every
// register.
func TestUniqueWaitsForReplica(t *testing.T) {
	nodelay := []string{"--repl-diskless-sync-delay", "0"}
	master := redistest.Start(t, redistest.Options{Args: nodelay})
	link := faultproxy.New(t, master.Addr)
	host, port, _ := net.SplitHostPort(link.Addr())
	replica := redistest.Start(t, redistest.Options{Args: append([]string{"--replicaof", host, port}, nodelay...)})
	mrdb := master.Client(t)
	online := func() bool {
		info, _ := mrdb.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	}
	redistest.WaitFor(t, "replica online", online)
	ctx := context.Background()
	// Replicas 0, the default, waits for one replica once it saw one.
	e := newEngine(t, master.Client(t), engine.Options{
		Namespace: redistest.Prefix(t), FlushInterval: time.Hour, ReplicaTimeout: time.Second,
	})
	u := uniqueOrFail(t, e, "uv")
	var want hll.Registers
	add := func(from, to int) {
		for i := from; i < to; i++ {
			u.Add(visitor(i))
			want.Set(hll.Pos(visitor(i)))
		}
	}
	add(0, 1000)
	// A replica slow to acknowledge (a busy machine) leaves the registers
	// to the next flush, as any unacknowledged write.
	redistest.WaitFor(t, "a replicated flush", func() bool { return e.Flush(ctx) == nil })
	link.Blackhole(true)
	add(1000, 2000)
	if err := e.Flush(ctx); !errors.Is(err, flush.ErrNotReplicated) {
		t.Fatalf("Flush with the replica silent = %v; want ErrNotReplicated", err)
	}
	link.Blackhole(false)
	redistest.WaitFor(t, "replica online again", online)
	redistest.WaitFor(t, "a replicated flush", func() bool { return e.Flush(ctx) == nil })
	b, err := replica.Client(t).Get(ctx, e.Key("uv")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var got hll.Registers
	if err := got.MergeEncoded(b); err != nil {
		t.Fatal(err)
	}
	if n := differ(&got, &want); n > 0 {
		t.Errorf("the replica's HyperLogLog misses %d registers", n)
	}
	if s := e.Stats().Uniques; s.Waits < 3 {
		t.Errorf("Stats().Uniques = %+v; want a WAIT per flush", s)
	}
}

// TestUniqueMillionOverEightEngines adds 1,000,000 distinct members, each
// from two of 8 engines (8 processes, each with its own client), with
// background flushes every millisecond. The count must be within 2 % of the truth
// and equal, register for register, to PFADD of the same members.
func TestUniqueMillionOverEightEngines(t *testing.T) {
	const members, engines = 1_000_000, 8
	srv := redistest.Start(t, redistest.Options{})
	ns := redistest.Prefix(t)
	var es []*engine.Engine
	for range engines {
		es = append(es, newEngine(t, srv.Client(t), engine.Options{Namespace: ns, FlushInterval: time.Millisecond}))
	}
	var wg sync.WaitGroup
	for k, e := range es {
		u := uniqueOrFail(t, e, "uv")
		for g := range 2 {
			wg.Go(func() {
				// Engine k adds the members i with i%8 == k and those with
				// i%8 == k+1: every member twice, from two engines.
				for i := g; i < members; i += 2 {
					if i%engines == k || i%engines == (k+1)%engines {
						u.Add(visitor(i))
					}
					if i%4096 == 0 {
						runtime.Gosched() // as handlers blocking on I/O do: flushes run meanwhile
					}
				}
			})
		}
	}
	wg.Wait()
	var commands uint64
	for _, e := range es {
		closeOrFail(t, e)
		commands += e.Stats().Uniques.Commands
	}
	rdb := srv.Client(t)
	pfaddRange(t, rdb, ns+"ref", 0, members)
	got := sameHLL(t, rdb, ns+"uv", ns+"ref")
	if dev := math.Abs(float64(got)-members) / members; dev > 0.02 {
		t.Errorf("count %d is %.2f %% off the %d members; want within 2 %%", got, 100*dev, members)
	}
	t.Logf("%d members added twice over %d engines: count %d (%.3f %% off), %d Redis commands in all",
		members, engines, got, 100*(float64(got)-members)/members, commands)
}

// commandStats returns Redis' accounting per command since the last
// CONFIG RESETSTAT; commands a script runs are counted too.
func commandStats(t testing.TB, rdb redis.UniversalClient) redisinfo.Snapshot {
	t.Helper()
	s, err := redisinfo.Read(context.Background(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUniqueCommandsPerFlushIndependentOfMembers counts, with INFO
// commandstats, the Redis commands of a flush of 5 unique counts after
// 10 to 100,000 new members each: one command per count, a PFADD of the
// members while the counts are small, a merge script once they are large.
func TestUniqueCommandsPerFlushIndependentOfMembers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	ctx := context.Background()
	e := newEngine(t, srv.Client(t), engine.Options{Namespace: redistest.Prefix(t), FlushInterval: time.Hour})
	var us []*engine.Unique
	for i := range 5 {
		us = append(us, uniqueOrFail(t, e, fmt.Sprint("uv:", i)))
	}
	next := 0
	for _, tc := range []struct {
		members int
		cmd     string // the command of each count
	}{
		{10, "pfadd"}, {1_000, "pfadd"}, {100_000, "eval"}, {1_000, "eval"}, {100_000, "eval"},
	} {
		if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			for range tc.members {
				u.Add(visitor(next))
				next++
			}
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		stats := commandStats(t, rdb)
		calls := map[string]int64{}
		for _, cmd := range []string{"pfadd", "eval", "evalsha", "exists", "set", "pfmerge", "del", "get"} {
			calls[cmd] = stats.Calls[cmd]
		}
		t.Logf("a flush of 5 counts after %d new members each: %v, %d µs in Redis",
			tc.members, calls, stats.Usec["pfadd"]+stats.Usec["eval"])
		if calls[tc.cmd] != 5 || calls["pfadd"]+calls["eval"]+calls["evalsha"] != 5 || calls["get"] != 0 {
			t.Errorf("after %d members: %v; want 5 %s, no other command per count", tc.members, calls, tc.cmd)
		}
	}
}

// TestUniqueSurvivesFaults adds members to three unique counts while the
// connection to Redis is cut, a reply is lost after the merge was applied,
// and Redis is unreachable for a second; once it is back, Close must
// write everything: each count equals PFADD of all its members.
func TestUniqueSurvivesFaults(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := faultproxy.New(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{
		Addr: proxy.Addr(), MaxRetries: -1,
		DialTimeout: slowdown * 100 * time.Millisecond, ReadTimeout: slowdown * 200 * time.Millisecond,
	})
	t.Cleanup(func() { rdb.Close() })
	ns := redistest.Prefix(t)
	var errs atomic.Int64
	e := newEngine(t, rdb, engine.Options{
		Namespace: ns, FlushInterval: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		FlushTimeout: slowdown * time.Second, OnError: func(error) { errs.Add(1) },
	})
	var us []*engine.Unique
	for i := range 3 {
		us = append(us, uniqueOrFail(t, e, fmt.Sprint("uv:", i)))
	}
	var added atomic.Int64 // members [0, added) were added to each count
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, u := range us {
				u.Add(visitor(i))
			}
			added.Store(int64(i + 1))
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	progress := func(what string) {
		t.Helper()
		flushes := e.Stats().Uniques.Flushes
		redistest.WaitFor(t, what, func() bool { return e.Stats().Uniques.Flushes > flushes+2 })
	}
	progress("flushes before the faults")
	for range 3 {
		proxy.CutAll()
		progress("flushes after a cut")
	}
	for range 3 {
		proxy.DropNextReply()
		progress("flushes after a lost reply")
	}
	proxy.Refuse(true)
	proxy.CutAll()
	redistest.WaitFor(t, "flushes failing during the outage", func() bool { return errs.Load() > 3 })
	time.Sleep(time.Second) // members added during the outage wait in the sketches
	proxy.Refuse(false)
	progress("flushes after the outage")
	close(stop)
	wg.Wait()
	closeOrFail(t, e)

	check := srv.Client(t)
	n := int(added.Load())
	pfaddRange(t, check, ns+"ref", 0, n)
	for i := range us {
		sameHLL(t, check, fmt.Sprint(ns, "uv:", i), ns+"ref")
	}
	s := e.Stats().Uniques
	t.Logf("%d members in each of 3 counts; %d errors reported, %d writes failed and were resent, %d commands in all",
		n, errs.Load(), s.Failures, s.Commands)
	if errs.Load() == 0 {
		t.Error("no flush failed: the faults did not hit")
	}
}

// TestUniqueCountReadsOwnWrites adds members in chunks while flushes run
// every millisecond and checks after each chunk that Count equals the
// estimate of exactly the members added so far: with no other writer,
// a register missed in flight, or counted from a stale read, shows.
func TestUniqueCountReadsOwnWrites(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	for _, age := range []time.Duration{-1, 0, time.Hour} {
		t.Run(fmt.Sprint("MaxReadAge=", age), func(t *testing.T) {
			e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t), FlushInterval: time.Millisecond, MaxReadAge: age})
			u := uniqueOrFail(t, e, "uv")
			var want hll.Registers
			for i := 0; i < 20_000; i++ {
				u.Add(visitor(i))
				want.Set(hll.Pos(visitor(i)))
				if i%97 != 0 {
					continue
				}
				time.Sleep(100 * time.Microsecond) // let flushes run between reads
				got, err := u.Count(ctx)
				if err != nil {
					t.Fatalf("Count: %v", err)
				}
				if want := int64(want.Estimate()); got != want {
					t.Fatalf("after %d members: Count = %d; want %d", i+1, got, want)
				}
			}
			s := e.Stats().Uniques
			t.Logf("%d reads, %d from a value already read, %d GETs, %d flushes", s.Reads, s.ReadCacheHits, s.ReadRoundTrips, s.Flushes)
		})
	}
}

// TestUniqueSeesOtherProcesses reads a count another engine wrote.
func TestUniqueSeesOtherProcesses(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	ns := redistest.Prefix(t)
	writer := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	reader := newEngine(t, rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour, MaxReadAge: -1})
	w, r := uniqueOrFail(t, writer, "uv"), uniqueOrFail(t, reader, "uv")
	for i := range 5000 {
		w.Add(visitor(i))
	}
	if n, err := r.Count(ctx); n != 0 || err != nil {
		t.Errorf("Count before the writer flushed = %d, %v; want 0", n, err)
	}
	if err := writer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r.Add(visitor(5000))
	want, _ := w.Count(ctx)
	if n, err := r.Count(ctx); err != nil || n < want {
		t.Errorf("reader's Count = %d, %v; want at least the writer's %d", n, err, want)
	}
}

func TestUniqueBadInput(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	ns := redistest.Prefix(t)
	e, err := engine.New(rdb, engine.Options{Namespace: ns, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", strings.Repeat("x", engine.MaxNameLen+1)} {
		if _, err := e.Unique(name); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("Unique(%d bytes) = %v; want ErrInvalid", len(name), err)
		}
	}
	if a, b := uniqueOrFail(t, e, "uv"), uniqueOrFail(t, e, "uv"); a != b {
		t.Error("Unique twice with one name returned two handles")
	}

	// A key that holds something else is refused; its members are kept
	// until it can be written.
	bad := uniqueOrFail(t, e, "taken")
	for _, hold := range []func() error{
		func() error { return rdb.Set(ctx, e.Key("taken"), "not a HyperLogLog", 0).Err() },
		func() error { return rdb.RPush(ctx, e.Key("taken"), "a list").Err() },
	} {
		rdb.Del(ctx, e.Key("taken"))
		if err := hold(); err != nil {
			t.Fatal(err)
		}
		bad.Add("member")
		err := e.Flush(ctx)
		var ke *engine.UniqueKeyError
		if !errors.As(err, &ke) || ke.Name != "taken" || !errors.Is(err, flush.ErrWrongType) {
			t.Errorf("Flush into a key held by something else = %v; want a *UniqueKeyError wrapping ErrWrongType", err)
		}
		if _, err := bad.Count(ctx); !errors.Is(err, flush.ErrWrongType) {
			t.Errorf("Count = %v; want ErrWrongType", err)
		}
	}
	rdb.Del(ctx, e.Key("taken"))
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("Flush once the key is free: %v", err)
	}
	rdb.PFAdd(ctx, ns+"ref", "member")
	sameHLL(t, rdb, e.Key("taken"), ns+"ref")

	// Close reports what it could not write.
	rdb.Set(ctx, e.Key("taken"), "not a HyperLogLog", 0)
	bad.Add("another")
	err = e.Close(ctx)
	var ue *engine.UnflushedError
	if !errors.As(err, &ue) || ue.Uniques != 1 || ue.Registers != 1 || ue.UniqueNames[0] != "taken" {
		t.Errorf("Close = %v; want an *UnflushedError naming 1 unique count with 1 register", err)
	}
	if !errors.Is(err, flush.ErrWrongType) {
		t.Errorf("Close = %v; want it to wrap ErrWrongType", err)
	}

	rejected := e.Stats().RejectedAdds
	bad.Add("after close")
	if got := e.Stats().RejectedAdds; got != rejected+1 {
		t.Errorf("RejectedAdds = %d after an Add past Close; want %d", got, rejected+1)
	}
	if _, err := e.Unique("new"); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Unique after Close = %v; want ErrClosed", err)
	}
	if _, err := bad.Count(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Count after Close = %v; want ErrClosed", err)
	}
	if err := e.Flush(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Flush after Close = %v; want ErrClosed", err)
	}
}

// TestUniqueAddDoesNotAllocate guards the hot path, for a small count and
// for one past its sparse size.
func TestUniqueAddDoesNotAllocate(t *testing.T) {
	e := newEngine(t, redistest.Client(t), engine.Options{Namespace: redistest.Prefix(t)})
	small, large := uniqueOrFail(t, e, "small"), uniqueOrFail(t, e, "large")
	small.Add("a")
	for i := range 100_000 {
		large.Add(visitor(i))
	}
	member, b := "visitor-12345", []byte("visitor-12345")
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"sparse Add", func() { small.Add("a") }},
		{"dense Add", func() { large.Add(member) }},
		{"dense AddBytes", func() { large.AddBytes(b) }},
	} {
		if n := testing.AllocsPerRun(1000, tc.fn); n != 0 {
			t.Errorf("%s allocates %.1f times per call; want 0", tc.name, n)
		}
	}
}

// TestUniqueSmallCountsStaySmall keeps 100,000 unique counts of 5 members
// each: once flushed, a small count must cost well under a KiB of heap
// (its members went to Redis; a dense sketch would be 18 KiB).
func TestUniqueSmallCountsStaySmall(t *testing.T) {
	const counts = 100_000
	e := newEngine(t, redistest.Client(t), engine.Options{Namespace: redistest.Prefix(t), FlushInterval: time.Hour})
	before := heapInUse()
	for i := range counts {
		u := uniqueOrFail(t, e, "uv:"+strconv.Itoa(i))
		for j := range 5 {
			u.Add(visitor(i*5 + j))
		}
	}
	pending := heapInUse()
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	per := (float64(heapInUse()) - float64(before)) / counts
	t.Logf("%d counts of 5 members: %.0f bytes each with their members pending, %.0f once flushed",
		counts, (float64(pending)-float64(before))/counts, per)
	if per > 1024 {
		t.Errorf("a flushed small count takes %.0f bytes; want under 1 KiB", per)
	}
}
