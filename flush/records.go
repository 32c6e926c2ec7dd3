package flush

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
)

// Writer records carry no TTL, so that no volatile-* maxmemory policy can
// evict them ahead of the counters they protect; instead field "t" holds
// the Redis server time (ms) of the last batch applied, and CollectRecords
// deletes the records of writers gone for longer than an idle time.

// ErrEvictable is matched (errors.Is) by every *EvictionError.
var ErrEvictable = errors.New("flush: maxmemory-policy can evict abacus state")

// ErrPolicyUnknown is wrapped by the error CheckEviction returns when a
// server does not tell its eviction policy: CONFIG is disabled, renamed
// or forbidden to the user (as on many managed Redis services), or the
// policy is one this package does not know.
var ErrPolicyUnknown = errors.New("flush: maxmemory-policy unknown")

const (
	// scanCount is the COUNT hint of each SCAN: the keys examined (and the
	// most script calls pipelined) per round trip.
	scanCount = 1000
	// maxSkippedKeys bounds Collected.SkippedKeys.
	maxSkippedKeys = 100
)

// Collected is what one CollectRecords call did. Records deleted by their
// TTL or by someone else while it ran are in no count.
type Collected struct {
	Deleted  int // idle records deleted
	Kept     int // records whose last batch is more recent than idle
	Expiring int // old-format records: no "t" but a TTL, left to expire
	// Skipped counts hashes under the prefix that CollectRecords never
	// deletes: no "t" and no TTL, a "t" that is not a number, or no "seq"
	// (not a writer record). Nothing will remove them; a caller may log
	// SkippedKeys, the first 100 of them.
	Skipped     int
	SkippedKeys []string
}

// CollectRecords deletes the writer records under prefix (the Options'
// RecordPrefix) whose last batch is older than idle by the clock of the
// Redis server holding them; on a *redis.ClusterClient (or *redis.Ring) it
// scans every master concurrently. It needs Redis 6.0 (SCAN … TYPE).
//
// Each record is checked and deleted in one script, so a writer that
// flushes between the scan and the delete keeps its record. Deleting the
// record of a live writer that has not written under it for idle (one
// its master's home slot left behind in a reshard, say) is safe: its
// next batch carries the writer's floor and applies. A batch in
// doubt for longer than idle, though, finds its record gone when resent
// and is reported lost (*LostError) rather than applied: idle should
// exceed the longest outage a writer is to ride through exactly-once, as
// Options.RecordTTL (default 1h) does.
//
// A record with a "t" is judged by it, whatever its TTL; one without is
// left alone (see Collected). On error (wrapping ctx's error if ctx ended
// first; on a Cluster, the first error of each failing master, joined)
// the Collected returned counts the work done until then. The work is not
// bounded otherwise: bound it with ctx.
func CollectRecords(ctx context.Context, rdb redis.UniversalClient, prefix string, idle time.Duration) (Collected, error) {
	switch {
	case prefix == "":
		return Collected{}, invalid.New(ErrInvalid, "prefix", prefix, "a record prefix is required")
	case idle <= 0:
		return Collected{}, invalid.New(ErrInvalid, "idle", idle, "must be positive")
	}
	var mu sync.Mutex
	var res Collected
	err := forEachNode(ctx, rdb, func(ctx context.Context, node redis.Cmdable, addr string) error {
		var cursor uint64
		for {
			keys, next, err := node.ScanType(ctx, cursor, globEscape(prefix)+"*", scanCount, "hash").Result()
			if err != nil {
				return fmt.Errorf("flush: collect records on %s: %w", addr, err)
			}
			// Scripts go through rdb, which routes each key to the node
			// that owns it now, even if its slot moved since the scan.
			outcomes, err := collectKeys(ctx, rdb, keys, idle)
			mu.Lock()
			res.add(keys, outcomes)
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("flush: collect records on %s: %w", addr, err)
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	})
	return res, err
}

func (c *Collected) add(keys []string, outcomes []int64) {
	for i, o := range outcomes {
		switch o {
		case collectDeleted:
			c.Deleted++
		case collectKept:
			c.Kept++
		case collectExpiring:
			c.Expiring++
		case collectSkipped:
			c.Skipped++
			if len(c.SkippedKeys) < maxSkippedKeys {
				c.SkippedKeys = append(c.SkippedKeys, keys[i])
			}
		}
	}
}

// Outcomes of collectScript for one key.
const (
	collectGone     = 0 // no longer a hash: deleted or replaced since the scan
	collectDeleted  = 1
	collectKept     = 2
	collectExpiring = 3
	collectSkipped  = 4
)

// collectScript deletes the record KEYS[1] if its field "t" is more than
// ARGV[1] ms behind the server's TIME, checked in the same atomic step,
// and returns one of the collect* outcomes. TIME makes scripts
// non-deterministic, which Redis allows since scripts replicate their
// effects (the DEL), the default since Redis 5.
var collectScript = redis.NewScript(`
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local t = tonumber(redis.call('HGET', KEYS[1], 't') or '')
if not t then
  if redis.call('PTTL', KEYS[1]) >= 0 then return 3 end
  return 4
end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if ms - t <= tonumber(ARGV[1]) then return 2 end
if redis.call('HEXISTS', KEYS[1], 'seq') == 0 then return 4 end
redis.call('DEL', KEYS[1])
return 1
`)

// collectKeys runs collectScript on each key, pipelined: EVALSHA first,
// then EVAL for those the server answered NOSCRIPT (Script.Run's
// fallback, one round trip per pipeline instead of per key). It returns
// the outcome per key, collectGone for keys whose call failed, and the
// first failure.
func collectKeys(ctx context.Context, rdb redis.UniversalClient, keys []string, idle time.Duration) ([]int64, error) {
	outcomes := make([]int64, len(keys))
	todo := make([]int, len(keys)) // indexes into keys still to run
	for i := range todo {
		todo[i] = i
	}
	var firstErr error
	for _, eval := range []bool{false, true} {
		if len(todo) == 0 {
			break
		}
		pipe := rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(todo))
		for j, i := range todo {
			k := []string{keys[i]}
			if eval {
				cmds[j] = collectScript.Eval(ctx, pipe, k, idle.Milliseconds())
			} else {
				cmds[j] = collectScript.EvalSha(ctx, pipe, k, idle.Milliseconds())
			}
		}
		pipe.Exec(ctx) // errors are read per command below
		var noScript []int
		for j, i := range todo {
			o, err := cmds[j].Int64()
			switch {
			case err == nil:
				outcomes[i] = o
			case !eval && isNoScript(err):
				noScript = append(noScript, i)
			case firstErr == nil:
				firstErr = fmt.Errorf("record %s: %w", keys[i], err)
			}
		}
		todo = noScript
	}
	return outcomes, firstErr
}

// globEscape quotes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// forEachNode calls fn on every master of a *redis.ClusterClient or
// shard of a *redis.Ring, concurrently, and on rdb itself otherwise. It
// returns the errors of all nodes, joined (sorted, for a stable message).
func forEachNode(ctx context.Context, rdb redis.UniversalClient, fn func(ctx context.Context, node redis.Cmdable, addr string) error) error {
	var mu sync.Mutex
	var errs []error
	each := func(ctx context.Context, c *redis.Client) error {
		if err := fn(ctx, c, c.Options().Addr); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, each)
	case *redis.Ring:
		err = c.ForEachShard(ctx, each)
	default:
		addr := ""
		if o, ok := rdb.(interface{ Options() *redis.Options }); ok {
			addr = o.Options().Addr
		}
		err = fn(ctx, rdb, addr)
	}
	if err != nil {
		return err
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// EvictionError reports a Redis server whose maxmemory-policy can evict
// keys abacus keeps once it reaches maxmemory: counters (counts would be
// lost), token keys of retry-safe adds (a retry would be counted again),
// or writer records (a batch in doubt would be counted twice when
// resent). errors.Is(err, ErrEvictable) holds.
type EvictionError struct {
	Addr      string // the server, as the client addresses it
	Policy    string // its maxmemory-policy
	MaxMemory int64  // its maxmemory in bytes, never 0 (no limit)
	// Records says every key can be evicted, writer records included
	// (allkeys-*), not only the keys with a TTL (volatile-*).
	Records bool
}

func (e *EvictionError) Error() string {
	what := "the keys with a TTL (counters with one, tokens of retry-safe adds)"
	if e.Records {
		what = "counters, tokens and writer records"
	}
	return fmt.Sprintf("flush: %s: maxmemory-policy %s (maxmemory %d) can evict %s", e.Addr, e.Policy, e.MaxMemory, what)
}

// Is makes errors.Is(err, ErrEvictable) true.
func (e *EvictionError) Is(target error) bool { return target == ErrEvictable }

// CheckEviction reads maxmemory and maxmemory-policy from the server (on a
// *redis.ClusterClient from every master) and returns nil when no policy
// can evict what abacus keeps: no maxmemory (0), noeviction (writes fail
// with OOM instead), or volatile-* when ttl is false. ttl says whether
// the caller writes keys with a TTL: counters with one (Options.KeyTTL,
// Delta.TTLMillis), or the token keys of deltas with a Token (whose
// eviction would let a retry count again); writer records never carry
// one. It returns an *EvictionError for allkeys-* policies, and for
// volatile-* ones when ttl is true.
//
// A server that refuses CONFIG GET, or names a policy this package does
// not know, yields an error wrapping ErrPolicyUnknown: abacus cannot tell,
// and a caller may ignore it. Other failures (network, ctx) are returned
// wrapped. On a Cluster the errors of all masters are joined.
func CheckEviction(ctx context.Context, rdb redis.UniversalClient, ttl bool) error {
	return forEachNode(ctx, rdb, func(ctx context.Context, node redis.Cmdable, addr string) error {
		// One pattern rather than two names: CONFIG GET takes several
		// parameters only since Redis 7.
		cfg, err := node.ConfigGet(ctx, "maxmemory*").Result()
		if err != nil {
			var rerr redis.Error
			if errors.As(err, &rerr) { // the server answered: CONFIG is refused
				return fmt.Errorf("%w: %s: CONFIG GET: %w", ErrPolicyUnknown, addr, err)
			}
			return fmt.Errorf("flush: check eviction on %s: %w", addr, err)
		}
		policy, okPolicy := cfg["maxmemory-policy"]
		maxmem, err := strconv.ParseInt(cfg["maxmemory"], 10, 64)
		if !okPolicy || err != nil {
			return fmt.Errorf("%w: %s: CONFIG GET maxmemory* = %v", ErrPolicyUnknown, addr, cfg)
		}
		evict := &EvictionError{Addr: addr, Policy: policy, MaxMemory: maxmem}
		switch {
		case maxmem == 0 || policy == "noeviction":
			return nil
		case strings.HasPrefix(policy, "allkeys-"):
			evict.Records = true
			return evict
		case strings.HasPrefix(policy, "volatile-"):
			if ttl {
				return evict
			}
			return nil
		}
		return fmt.Errorf("%w: %s: maxmemory-policy %q", ErrPolicyUnknown, addr, policy)
	})
}
