package flush

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

// serverMillis returns the Redis server's clock in ms, the clock records
// are stamped with.
func serverMillis(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatalf("TIME: %v", err)
	}
	return now.UnixMilli()
}

// hoursAgo is a record time idle for any idle below 2h, by rdb's clock.
func hoursAgo(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	return serverMillis(t, rdb) - (2 * time.Hour).Milliseconds()
}

// writeRecord writes a writer record as the apply script does: fields
// "seq" and, unless tm is nil, "t".
func writeRecord(t *testing.T, rdb redis.UniversalClient, key string, tm any) {
	t.Helper()
	fields := []any{"seq", 7}
	if tm != nil {
		fields = append(fields, "t", tm)
	}
	if err := rdb.HSet(context.Background(), key, fields...).Err(); err != nil {
		t.Fatalf("HSET %s: %v", key, err)
	}
}

func exists(t *testing.T, rdb redis.UniversalClient, key string) bool {
	t.Helper()
	n, err := rdb.Exists(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("EXISTS %s: %v", key, err)
	}
	return n == 1
}

func TestCollectRecordsDeletesIdleKeepsTheRest(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	p := redistest.Prefix(t)
	// Glob metacharacters in the prefix must match only themselves: the
	// unescaped pattern would also match the decoy "w*:".
	prefix := p + `w[*?]\:`
	old, fresh := hoursAgo(t, rdb), serverMillis(t, rdb)

	const idle = 2600 // several SCAN pages of idle records
	pipe := rdb.Pipeline()
	for i := range idle {
		pipe.HSet(ctx, fmt.Sprint(prefix, "idle", i), "seq", 1, "t", old)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	writeRecord(t, rdb, prefix+"fresh", fresh)
	writeRecord(t, rdb, prefix+"idle-ttl", old) // "t" decides, whatever the TTL
	rdb.PExpire(ctx, prefix+"idle-ttl", time.Hour)
	writeRecord(t, rdb, prefix+"v1", nil) // the old format: no "t", a TTL
	rdb.PExpire(ctx, prefix+"v1", time.Hour)
	writeRecord(t, rdb, prefix+"bare", nil) // neither "t" nor TTL
	writeRecord(t, rdb, prefix+"bad-t", "soon")
	rdb.HSet(ctx, prefix+"no-seq", "t", old) // not a writer record
	rdb.Set(ctx, prefix+"string", "x", 0)    // not a hash
	writeRecord(t, rdb, p+"w*:decoy", old)
	writeRecord(t, rdb, p+"other:idle", old)

	got, err := CollectRecords(ctx, rdb, prefix, time.Hour)
	if err != nil {
		t.Fatalf("CollectRecords: %v", err)
	}
	slices.Sort(got.SkippedKeys)
	want := Collected{
		Deleted: idle + 1, Kept: 1, Expiring: 1, Skipped: 3,
		SkippedKeys: []string{prefix + "bad-t", prefix + "bare", prefix + "no-seq"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CollectRecords = %+v; want %+v", got, want)
	}
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{prefix + "idle0", false},
		{fmt.Sprint(prefix, "idle", idle-1), false},
		{prefix + "idle-ttl", false},
		{prefix + "fresh", true},
		{prefix + "v1", true},
		{prefix + "bare", true},
		{prefix + "bad-t", true},
		{prefix + "no-seq", true},
		{prefix + "string", true},
		{p + "w*:decoy", true},
		{p + "other:idle", true},
	} {
		if got := exists(t, rdb, tc.key); got != tc.want {
			t.Errorf("EXISTS %s = %v; want %v", tc.key, got, tc.want)
		}
	}
	if ttl, _ := rdb.PTTL(ctx, prefix+"v1").Result(); ttl <= 0 {
		t.Errorf("PTTL v1 = %v; want its TTL untouched", ttl)
	}

	again, err := CollectRecords(ctx, rdb, prefix, time.Hour)
	if err != nil || again.Deleted != 0 || again.Kept != 1 {
		t.Fatalf("second CollectRecords = %+v, %v; want nothing more deleted, 1 kept", again, err)
	}
}

// TestCollectRecordsKeepsRecordRefreshedAfterScan runs the check-and-delete
// step on records a scan found idle, after one was written again and
// another deleted.
func TestCollectRecordsKeepsRecordRefreshedAfterScan(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	p := redistest.Prefix(t)
	refreshed, idle, gone := p+"w:refreshed", p+"w:idle", p+"w:gone"
	old := hoursAgo(t, rdb)
	for _, k := range []string{refreshed, idle, gone} {
		writeRecord(t, rdb, k, old)
	}
	// After the scan: a writer flushes, a record goes away.
	writeRecord(t, rdb, refreshed, serverMillis(t, rdb))
	rdb.Del(ctx, gone)

	got, err := collectKeys(ctx, rdb, []string{refreshed, idle, gone}, time.Hour)
	if err != nil {
		t.Fatalf("collectKeys: %v", err)
	}
	if want := []int64{collectKept, collectDeleted, collectGone}; !slices.Equal(got, want) {
		t.Fatalf("collectKeys outcomes = %v; want %v", got, want)
	}
	if r, i := exists(t, rdb, refreshed), exists(t, rdb, idle); !r || i {
		t.Fatalf("EXISTS refreshed, idle = %v, %v; want true, false", r, i)
	}
}

// TestCollectRecordsAfterScriptFlush checks the EVAL fallback on NOSCRIPT.
func TestCollectRecordsAfterScriptFlush(t *testing.T) {
	rdb := redistest.Start(t, redistest.Options{}).Client(t)
	ctx := context.Background()
	p := redistest.Prefix(t)
	for range 2 {
		writeRecord(t, rdb, p+"w:idle", hoursAgo(t, rdb))
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := CollectRecords(ctx, rdb, p+"w:", time.Hour)
		if err != nil || got.Deleted != 1 {
			t.Fatalf("CollectRecords after SCRIPT FLUSH = %+v, %v; want 1 deleted", got, err)
		}
	}
}

// TestCollectRecordsOfShortLivedWriters runs 1,000 writers, one flush
// each, and collects their records once they are older than idle.
func TestCollectRecordsOfShortLivedWriters(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	p := redistest.Prefix(t)
	const writers = 1000
	for i := range writers {
		src := newMapSource()
		src.add(p+"hits", 1)
		if err := newFlusher(t, rdb, src, Options{RecordPrefix: p + "w:"}).Flush(ctx); err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	// Records stamped by the apply script are recognised, and fresh.
	got, err := CollectRecords(ctx, rdb, p+"w:", time.Hour)
	if err != nil || got.Kept != writers || got.Deleted != 0 {
		t.Fatalf("CollectRecords right after the flushes = %+v, %v; want %d kept", got, err, writers)
	}
	keys, err := rdb.Keys(ctx, p+"w:*").Result()
	if err != nil || len(keys) != writers {
		t.Fatalf("KEYS w:* = %d keys, %v; want %d", len(keys), err, writers)
	}
	old := hoursAgo(t, rdb)
	for _, k := range keys {
		rdb.HSet(ctx, k, "t", old) // as if their last flush was 2h ago
	}
	got, err = CollectRecords(ctx, rdb, p+"w:", time.Hour)
	if err != nil || got.Deleted != writers {
		t.Fatalf("CollectRecords = %+v, %v; want %d deleted", got, err, writers)
	}
	if left, _ := rdb.Keys(ctx, p+"w:*").Result(); len(left) != 0 {
		t.Fatalf("%d writer records left; want 0", len(left))
	}
	if n, _ := rdb.Get(ctx, p+"hits").Int64(); n != writers {
		t.Fatalf("GET hits = %d; want %d", n, writers)
	}
}

func TestCollectRecordsRejectsBadArguments(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{})
	defer rdb.Close()
	for _, tc := range []struct {
		prefix string
		idle   time.Duration
	}{
		{"", time.Hour},
		{"w:", 0},
		{"w:", -time.Second},
	} {
		if _, err := CollectRecords(context.Background(), rdb, tc.prefix, tc.idle); !errors.Is(err, ErrInvalid) {
			t.Errorf("CollectRecords(%q, %v) error = %v; want ErrInvalid", tc.prefix, tc.idle, err)
		}
	}
}

func TestCollectRecordsHonoursContext(t *testing.T) {
	rdb := redistest.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CollectRecords(ctx, rdb, redistest.Prefix(t), time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("CollectRecords(cancelled ctx) error = %v; want context.Canceled", err)
	}
}

// evicts is what CheckEviction says can be evicted.
type evicts int

const (
	evictsNothing evicts = iota
	evictsCounters
	evictsRecords // and counters
)

func (e evicts) String() string {
	return [...]string{"nothing", "counters", "counters and records"}[e]
}

func evictsOf(t *testing.T, err error) evicts {
	t.Helper()
	var ee *EvictionError
	switch {
	case err == nil:
		return evictsNothing
	case !errors.As(err, &ee) || !errors.Is(err, ErrEvictable):
		t.Fatalf("CheckEviction error = %v; want an *EvictionError", err)
	case ee.Records:
		return evictsRecords
	}
	return evictsCounters
}

func TestCheckEviction(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	rdb := s.Client(t)
	ctx := context.Background()
	for _, tc := range []struct {
		policy    string
		maxmemory string
		keyTTL    bool
		want      evicts
	}{
		{"noeviction", "100mb", false, evictsNothing},
		{"noeviction", "100mb", true, evictsNothing},
		{"allkeys-lru", "100mb", false, evictsRecords},
		{"allkeys-lfu", "100mb", true, evictsRecords},
		{"allkeys-random", "100mb", false, evictsRecords},
		{"volatile-lru", "100mb", false, evictsNothing},
		{"volatile-lru", "100mb", true, evictsCounters},
		{"volatile-lfu", "100mb", false, evictsNothing},
		{"volatile-lfu", "100mb", true, evictsCounters},
		{"volatile-random", "100mb", true, evictsCounters},
		{"volatile-ttl", "100mb", false, evictsNothing},
		{"volatile-ttl", "100mb", true, evictsCounters},
		{"allkeys-lru", "0", true, evictsNothing}, // no limit: nothing is evicted
	} {
		t.Run(fmt.Sprintf("%s/maxmemory=%s/keyTTL=%v", tc.policy, tc.maxmemory, tc.keyTTL), func(t *testing.T) {
			for _, kv := range [][2]string{{"maxmemory", tc.maxmemory}, {"maxmemory-policy", tc.policy}} {
				if err := rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
					t.Fatalf("CONFIG SET %s %s: %v", kv[0], kv[1], err)
				}
			}
			err := CheckEviction(ctx, rdb, tc.keyTTL)
			if got := evictsOf(t, err); got != tc.want {
				t.Fatalf("CheckEviction(keyTTL %v) = %v; want it to find %v evictable", tc.keyTTL, err, tc.want)
			}
			var ee *EvictionError
			if errors.As(err, &ee) && (ee.Addr != s.Addr || ee.Policy != tc.policy || ee.MaxMemory != 100<<20) {
				t.Fatalf("EvictionError = %+v; want Addr %s, Policy %s, MaxMemory %d", ee, s.Addr, tc.policy, 100<<20)
			}
		})
	}
}

func TestCheckEvictionConfigRefused(t *testing.T) {
	rdb := redistest.Start(t, redistest.Options{}).Client(t)
	ctx := context.Background()
	rdb.ConfigSet(ctx, "maxmemory", "100mb")
	rdb.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru")
	// As on a managed Redis: the user may not run CONFIG.
	if err := rdb.Do(ctx, "ACL", "SETUSER", "default", "-config").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	if err := CheckEviction(ctx, rdb, false); !errors.Is(err, ErrPolicyUnknown) || errors.Is(err, ErrEvictable) {
		t.Fatalf("CheckEviction without CONFIG = %v; want ErrPolicyUnknown", err)
	}
}

func TestCheckEvictionServerDown(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer rdb.Close()
	s.Kill()
	err := CheckEviction(context.Background(), rdb, false)
	if err == nil || errors.Is(err, ErrPolicyUnknown) || errors.Is(err, ErrEvictable) {
		t.Fatalf("CheckEviction on a stopped server = %v; want a transport error", err)
	}
}

// TestRecordsAndEvictionOnCluster collects records in slots of all three
// masters, and finds the one master whose policy can evict.
func TestRecordsAndEvictionOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	cc := c.Client(t)
	ctx := context.Background()
	const prefix = "abacus:writer:"
	old, now := hoursAgo(t, cc), serverMillis(t, cc)
	var idle, fresh []string
	for sl := 0; sl < slots; sl += 97 {
		rec := prefix + "{" + slotTags()[sl] + "}:"
		idle = append(idle, rec+"gone")
		fresh = append(fresh, rec+"live")
		writeRecord(t, cc, rec+"gone", old)
		writeRecord(t, cc, rec+"live", now)
	}
	for i, s := range c.Nodes {
		if n, err := s.Client(t).DBSize(ctx).Result(); err != nil || n == 0 {
			t.Fatalf("DBSIZE on node %d = %d, %v; want records on every master", i, n, err)
		}
	}

	got, err := CollectRecords(ctx, cc, prefix, time.Hour)
	if err != nil || got.Deleted != len(idle) || got.Kept != len(fresh) {
		t.Fatalf("CollectRecords = %+v, %v; want %d deleted, %d kept", got, err, len(idle), len(fresh))
	}
	for i := range idle {
		if gone, live := exists(t, cc, idle[i]), exists(t, cc, fresh[i]); gone || !live {
			t.Fatalf("after CollectRecords: EXISTS %s, %s = %v, %v; want false, true", idle[i], fresh[i], gone, live)
		}
	}

	if err := CheckEviction(ctx, cc, true); err != nil {
		t.Fatalf("CheckEviction with the defaults = %v; want nil", err)
	}
	node := c.Nodes[1].Client(t)
	node.ConfigSet(ctx, "maxmemory", "100mb")
	node.ConfigSet(ctx, "maxmemory-policy", "allkeys-lfu")
	err = CheckEviction(ctx, cc, false)
	var ee *EvictionError
	if !errors.As(err, &ee) || ee.Addr != c.Nodes[1].Addr || ee.Policy != "allkeys-lfu" {
		t.Fatalf("CheckEviction with node 1 on allkeys-lfu = %v; want an *EvictionError for %s", err, c.Nodes[1].Addr)
	}
}
