package flush

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// slotMover moves hash slots between the masters of a Cluster by hand, as
// redis-cli --cluster reshard does, one step at a time.
type slotMover struct {
	t       *testing.T
	masters []*redis.Client // in the order of the Cluster's slot ranges
	ids     []string
	addrs   []string
}

func newSlotMover(t *testing.T, c *redistest.Cluster, masters int) *slotMover {
	t.Helper()
	m := &slotMover{t: t}
	for i := range masters {
		s := c.Master(t, i)
		rc := s.Client(t)
		id, err := rc.ClusterMyID(context.Background()).Result()
		if err != nil {
			t.Fatalf("CLUSTER MYID on %s: %v", s.Addr, err)
		}
		m.masters, m.ids, m.addrs = append(m.masters, rc), append(m.ids, id), append(m.addrs, s.Addr)
	}
	return m
}

func (m *slotMover) do(node int, args ...any) {
	m.t.Helper()
	if err := m.masters[node].Do(context.Background(), args...).Err(); err != nil {
		m.t.Fatalf("%v on %s: %v", args, m.addrs[node], err)
	}
}

// begin marks slot as migrating from master from to master to.
func (m *slotMover) begin(slot, from, to int) {
	m.t.Helper()
	m.do(to, "cluster", "setslot", slot, "importing", m.ids[from])
	m.do(from, "cluster", "setslot", slot, "migrating", m.ids[to])
}

// moveKeys migrates every key of slot from master from to master to.
func (m *slotMover) moveKeys(slot, from, to int) {
	m.t.Helper()
	ctx := context.Background()
	keys, err := m.masters[from].ClusterGetKeysInSlot(ctx, slot, 100000).Result()
	if err != nil {
		m.t.Fatalf("CLUSTER GETKEYSINSLOT %d: %v", slot, err)
	}
	if len(keys) == 0 {
		return
	}
	host, port, _ := net.SplitHostPort(m.addrs[to])
	args := []any{"migrate", host, port, "", 0, 5000, "keys"}
	for _, k := range keys {
		args = append(args, k)
	}
	m.do(from, args...)
}

// finish gives slot to master to, telling every master at once (the
// others would learn it from the cluster bus a moment later).
func (m *slotMover) finish(slot, to int) {
	m.t.Helper()
	for i := range m.masters {
		m.do(i, "cluster", "setslot", slot, "node", m.ids[to])
	}
}

// move migrates slot from master from to master to.
func (m *slotMover) move(slot, from, to int) {
	m.t.Helper()
	m.begin(slot, from, to)
	m.moveKeys(slot, from, to)
	m.finish(slot, to)
}

// keyIn returns a name whose key (prefix+name) hashes to slot, made
// unique by n.
func keyIn(slot, n int) string {
	return "{" + slotTags()[slot] + "}k" + strconv.Itoa(n)
}

// recordsOn counts the writer records under prefix on each master.
func recordsOn(t *testing.T, m *slotMover, prefix string) []int {
	t.Helper()
	counts := make([]int, len(m.masters))
	for i, rc := range m.masters {
		keys, err := rc.Keys(context.Background(), prefix+"*").Result()
		if err != nil {
			t.Fatalf("KEYS on %s: %v", m.addrs[i], err)
		}
		counts[i] = len(keys)
	}
	return counts
}

// TestClusterBatchesPerMaster flushes 1,000 and then 100,000 keys to three
// masters: one script call per BatchKeys keys of each master, and one
// writer record on each master, however many slots the keys span.
func TestClusterBatchesPerMaster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	cc := c.Client(t)
	m := newSlotMover(t, c, 3)
	ctx := context.Background()
	p := redistest.Prefix(t)
	src := newMapSource()
	const batchKeys = 512
	f := newFlusher(t, cc, src, Options{KeyPrefix: p, RecordPrefix: p + "w:", BatchKeys: batchKeys, Replicas: -1})
	want := map[string]int64{}
	for _, n := range []int{1000, 100000} {
		perMaster := make([]int, 3)
		for i := range n {
			name := "k" + strconv.Itoa(i)
			src.add(name, 1)
			want[name]++
			perMaster[c.RangeOf(Slot(p+name))]++
		}
		before := f.Stats().Commands
		if err := f.Flush(ctx); err != nil {
			t.Fatalf("Flush of %d keys: %v", n, err)
		}
		calls, wantCalls := f.Stats().Commands-before, 0
		for _, k := range perMaster {
			wantCalls += (k + batchKeys - 1) / batchKeys
		}
		if calls != uint64(wantCalls) {
			t.Errorf("Flush of %d keys (%v per master) made %d script calls; want %d", n, perMaster, calls, wantCalls)
		}
		if got := recordsOn(t, m, p+"w:"); fmt.Sprint(got) != "[1 1 1]" {
			t.Errorf("after a flush of %d keys, writer records per master = %v; want [1 1 1]", n, got)
		}
	}
	checkClusterTotals(t, cc, p, want)
}

// checkClusterTotals reads every key of want (under prefix) and compares.
func checkClusterTotals(t *testing.T, cc *redis.ClusterClient, prefix string, want map[string]int64) {
	t.Helper()
	ctx := context.Background()
	pipe := cc.Pipeline()
	cmds := make(map[string]*redis.StringCmd, len(want))
	for name := range want {
		cmds[name] = pipe.Get(ctx, prefix+name)
	}
	pipe.Exec(ctx)
	bad := 0
	for name, n := range want {
		got, err := cmds[name].Int64()
		if err != nil || got != n {
			if bad++; bad <= 10 {
				t.Errorf("GET %s = %d, %v; want %d", name, got, err, n)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d keys wrong", bad, len(want))
	}
}

// clusterFlusher starts a Cluster of three masters and a Flusher on it
// that has flushed one key to master 0, so that master 0 has a home
// group: the highest slot it owns.
func clusterFlusher(t *testing.T) (c *redistest.Cluster, m *slotMover, f *Flusher, src *mapSource, home int) {
	t.Helper()
	c = redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	m = newSlotMover(t, c, 3)
	p := redistest.Prefix(t)
	src = newMapSource()
	f = newFlusher(t, c.Client(t), src, Options{KeyPrefix: p, RecordPrefix: p + "w:", Replicas: -1})
	_, last := c.Slots(0)
	src.add(keyIn(last-100, 0), 1)
	if err := f.Flush(context.Background()); err != nil {
		t.Fatalf("first Flush: %v", err)
	}
	if home = f.topo.route(last).home; home != last {
		t.Fatalf("master 0's home is slot %d; want %d, the highest it owns", home, last)
	}
	return c, m, f, src, home
}

// inFlight makes a batch of group g out of ds, as cut does, with the
// deltas in flight in src.
func inFlight(f *Flusher, src *mapSource, g int, ds ...Delta) *batch {
	for _, d := range ds {
		src.inflight[d.Key] += d.N
	}
	b := &batch{group: g, record: f.record(g), seq: f.nextSeq[g], deltas: ds}
	f.nextSeq[g]++
	return b
}

// TestClusterBatchInDoubtFollowsItsRecord: a batch applied on master 0
// whose reply was lost, and its successor that never reached Redis, are
// resent after their record's slot, and the slots of some of their keys,
// moved to master 1. The record moved with the slot, so the first is
// found applied there and not applied again; the second applies there to
// the keys master 1 serves, and its other key goes back to the Source and
// on to master 0, in a batch of master 0's new home.
func TestClusterBatchInDoubtFollowsItsRecord(t *testing.T) {
	c, m, f, src, home := clusterFlusher(t)
	ctx := context.Background()
	moves, stays := home-1, home-2
	applied := inFlight(f, src, home, Delta{Key: keyIn(moves, 1), N: 10}, Delta{Key: keyIn(stays, 1), N: 20})
	if pending, _, err := f.send(ctx, []*batch{applied}); err != nil || len(pending) > 0 {
		t.Fatalf("send: %d pending, %v", len(pending), err)
	}
	f.floor[home], applied.doubt = applied.seq-1, true // as if its reply was lost
	unsent := inFlight(f, src, home, Delta{Key: keyIn(moves, 2), N: 100}, Delta{Key: keyIn(stays, 2), N: 200})
	unsent.sent, unsent.doubt = 1, true // as if sent, and lost on the way
	f.pending = []*batch{applied, unsent}

	m.move(home, 0, 1)
	m.move(moves, 0, 1)
	f.topo.stale = true // as the lost replies would have left it
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush after the moves: %v", err)
	}
	st := f.Stats()
	if st.Duplicates != 1 || st.Moved != 1 {
		t.Errorf("Duplicates = %d, Moved = %d; want 1 (the applied batch), 1 (the key master 1 does not serve)", st.Duplicates, st.Moved)
	}
	checkClusterTotals(t, c.Client(t), f.opts.KeyPrefix, map[string]int64{
		keyIn(moves, 1): 10, keyIn(stays, 1): 20, keyIn(moves, 2): 100, keyIn(stays, 2): 200,
	})
	if got := recordsOn(t, m, f.opts.RecordPrefix); fmt.Sprint(got) != "[1 1 0]" {
		t.Errorf("writer records per master = %v; want [1 1 0]: the moved one on master 1, a new one on master 0", got)
	}
}

// TestClusterFlushDuringSlotMigration flushes while a slot, and then the
// slot of master 0's record, are half migrated to master 1: what master 0
// still holds is applied there, the rest waits (ErrMoved) until the
// migration ends, and nothing is counted twice.
func TestClusterFlushDuringSlotMigration(t *testing.T) {
	c, m, f, src, home := clusterFlusher(t)
	ctx := context.Background()
	want := map[string]int64{keyIn(home-100, 0): 1}
	add := func(name string, n int64) {
		src.add(name, n)
		want[name] += n
	}
	s := home - 5
	old, fresh := keyIn(s, 1), keyIn(s, 2)
	add(old, 1)
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Master 0 migrates s and still holds old; fresh is not there, so
	// master 0 refuses it (ASK) until the migration ends.
	m.begin(s, 0, 1)
	add(old, 1)
	add(fresh, 1)
	if err := f.Flush(ctx); !errors.Is(err, ErrMoved) || !Retryable(err) {
		t.Fatalf("Flush during the migration of slot %d = %v; want a retryable ErrMoved", s, err)
	}
	if got, _ := m.masters[0].Get(ctx, f.opts.KeyPrefix+old).Int64(); got != 2 {
		t.Fatalf("GET old on master 0 = %d; want 2, applied where the key is", got)
	}
	m.moveKeys(s, 0, 1)
	m.finish(s, 1)
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush after the migration: %v", err)
	}

	// Now the record's slot: its keys (the record) are on master 1, the
	// slot still master 0's. Master 0 answers ASK, so the batch stays in
	// doubt until the slot is master 1's; then it applies there, and its
	// key, which master 1 does not serve, goes on to master 0.
	m.begin(home, 0, 1)
	m.moveKeys(home, 0, 1)
	add(keyIn(home-3, 3), 1)
	if err := f.Flush(ctx); !errors.Is(err, ErrPending) || !errors.Is(err, ErrMoved) {
		t.Fatalf("Flush while the record's slot migrates = %v; want ErrPending wrapping ErrMoved", err)
	}
	m.finish(home, 1)
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush after the record's slot moved: %v", err)
	}
	checkClusterTotals(t, c.Client(t), f.opts.KeyPrefix, want)
	if st := f.Stats(); st.LostBatches != 0 || st.Regressions != 0 {
		t.Errorf("LostBatches = %d, Regressions = %d; want 0", st.LostBatches, st.Regressions)
	}
}

// TestClusterAtLeastOnceSendsToTheMaster: an AtLeastOnce flush on a
// Cluster sends each key's INCRBY and PEXPIRE to the master that serves
// it, not to one that answers MOVED, and ends exact.
func TestClusterAtLeastOnceSendsToTheMaster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	cc := c.Client(t)
	m := newSlotMover(t, c, 3)
	ctx := context.Background()
	p := redistest.Prefix(t)
	src := newMapSource()
	f := newFlusher(t, cc, src, Options{Mode: AtLeastOnce, KeyPrefix: p, KeyTTL: time.Hour, Replicas: -1})
	want := map[string]int64{}
	for i := range 1000 {
		name := "k" + strconv.Itoa(i)
		src.add(name, int64(i+1))
		want[name] = int64(i + 1)
	}
	for _, rc := range m.masters {
		rc.ConfigResetStat(ctx)
	}
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for i, rc := range m.masters {
		info := rc.Info(ctx, "errorstats").Val()
		if strings.Contains(info, "errorstat_MOVED") || strings.Contains(info, "errorstat_ASK") {
			t.Errorf("master %s redirected commands of the flush:\n%s", m.addrs[i], info)
		}
	}
	checkClusterTotals(t, cc, p, want)
}
