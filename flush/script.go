package flush

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// failureWindow is how many recent batches per record keep their per-key
// errors for duplicates to report; a flush never has more batches in doubt
// per record than this (see maxBatchesPerGroup).
const failureWindow = 1024

// applyScript applies one batch at most once per (writer record, seq), and
// only in sequence order, so that no batch can be skipped.
//
// KEYS[1] is the writer record, a hash: field "seq" holds the highest batch
// applied, "t" the server time (ms) it was applied at, for the collector of
// stale records (see CollectRecords), and "f<seq mod window>" the per-key
// errors of a batch that had any, as JSON [seq, [index, message, ...]].
// KEYS[2..n+1] are the counters; KEYS[n+2..] sorted sets that registrations
// add to. ARGV[1] is the batch's seq; ARGV[2] the writer's floor, the seq up
// to which it knows every batch of this record was applied (and, where it
// waits for replicas, replicated); ARGV[3] "1" when the batch was sent
// before and its outcome is in doubt; ARGV[4] the key TTL in ms (0: none);
// ARGV[5] n; ARGV[6] the base, the lowest recorded seq the writer accepts
// (its floor, unless it accepted a regression); ARGV[6+i] the delta for
// KEYS[1+i]; then one triple per registration: the index in KEYS of its
// sorted set, the score and the member, added with ZADD NX.
//
// A record below the base means Redis lost writes it had acknowledged (a
// failover to a replica that missed them, a restart without persistence):
// the script applies nothing and says so, with the recorded seq, so that
// the writer can report the loss and resend on the new base. Since a
// record and its data change in one step and replicas apply writes in
// order, every batch above the recorded seq is absent and safe to resend.
//
// A batch applies when it directly follows the recorded one, or when the
// writer vouches that every earlier batch was applied (the record was
// collected while the writer was idle, or lost with data). Otherwise an
// earlier batch of the writer is still in doubt and must come first:
// applying this one would make that one look like a duplicate if it was in
// fact refused (say NOSCRIPT), losing it.
//
// A record that is missing when a batch in doubt is resent (evicted, or
// lost in a restart or failover) cannot tell whether that batch was
// applied: the script refuses to guess and says so.
//
// The record has no TTL: under a volatile-* eviction policy Redis would
// evict it first, and with it the protection of the batches in doubt.
//
// It returns {1, errors} when it applied the batch now, {0, errors} when
// the batch had been applied before, {2, {}} when it is out of order,
// {3, {}} when the record was lost while the batch was in doubt and
// {4, seq} when the record regressed below the base; errors is
// {index, message, ...} for the keys INCRBY refused. redis.pcall keeps one
// refused key from aborting the script: Redis would not roll back the
// INCRBYs already done.
var applyScript = redis.NewScript(`
local seq = tonumber(ARGV[1])
local field = 'f' .. (seq % ` + fmt.Sprint(failureWindow) + `)
local last = redis.call('HGET', KEYS[1], 'seq')
if not last then
  if ARGV[3] == '1' and seq > 1 and tonumber(ARGV[2]) == seq - 1 then
    return {3, {}}
  end
  last = 0
else
  last = tonumber(last)
end
if last < tonumber(ARGV[6]) then
  return {4, last}
end
if seq <= last then
  local rec = redis.call('HGET', KEYS[1], field)
  if rec then
    rec = cjson.decode(rec)
    if rec[1] == seq then return {0, rec[2]} end
  end
  return {0, {}}
end
if last ~= seq - 1 and tonumber(ARGV[2]) ~= seq - 1 then
  return {2, {}}
end
local failed = {}
local keyttl = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
for i = 2, n + 1 do
  local r = redis.pcall('INCRBY', KEYS[i], ARGV[i + 5])
  if type(r) == 'table' and r.err then
    -- Redis checks maxmemory at a script's first write only: a refusal
    -- here means nothing was written, so refuse the batch as a whole.
    if string.sub(r.err, 1, 3) == 'OOM' then return r end
    failed[#failed + 1] = i - 1
    failed[#failed + 1] = r.err
  elseif keyttl > 0 then
    redis.call('PEXPIRE', KEYS[i], keyttl)
  end
end
for j = n + 7, #ARGV, 3 do
  redis.call('ZADD', KEYS[tonumber(ARGV[j])], 'NX', ARGV[j + 1], ARGV[j + 2])
end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 't', now[1] * 1000 + math.floor(now[2] / 1000))
if #failed > 0 then
  redis.call('HSET', KEYS[1], field, cjson.encode({seq, failed}))
end
return {1, failed}
`)

// Outcomes of applyScript.
const (
	outcomeDuplicate  = 0
	outcomeApplied    = 1
	outcomeOutOfOrder = 2
	outcomeLost       = 3
	outcomeRegressed  = 4
)

// scriptReply is a parsed reply of applyScript.
type scriptReply struct {
	outcome int64          // one of the outcomes above
	failed  map[int]string // 0-based delta index → Redis error message
	last    uint64         // outcomeRegressed: the seq recorded
}

func parseScriptReply(v any) (scriptReply, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) != 2 {
		return scriptReply{}, fmt.Errorf("flush: unexpected script reply %v", v)
	}
	status, _ := arr[0].(int64)
	r := scriptReply{outcome: status}
	if status == outcomeRegressed {
		last, _ := arr[1].(int64)
		r.last = uint64(last)
		return r, nil
	}
	list, _ := arr[1].([]any)
	for i := 0; i+1 < len(list); i += 2 {
		idx, ok := list[i].(int64)
		msg, _ := list[i+1].(string)
		if !ok {
			return scriptReply{}, fmt.Errorf("flush: unexpected script reply %v", v)
		}
		if r.failed == nil {
			r.failed = map[int]string{}
		}
		r.failed[int(idx)-1] = msg
	}
	return r, nil
}
