package flush

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
)

// failureWindow is how many recent batches per record keep their per-key
// errors for duplicates to report; a flush never has more batches in doubt
// per record than this (see maxBatchesPerGroup).
const failureWindow = 1024

// applySource applies one batch at most once per (writer record, seq),
// and only in sequence order, so that no batch can be skipped.
//
// KEYS[1] is the writer record, a hash: field "seq" holds the highest batch
// applied, "t" the server time (ms) it was applied at, for the collector of
// stale records (see CollectRecords), and "f<seq mod window>" what a
// resend of a batch must report again, for a batch with per-key errors or
// tokens Redis held: JSON [seq, [index, message, ...], [index, ...]].
// ARGV[1] is the batch's seq; ARGV[2] the writer's floor, the seq up to
// which it knows every batch of this record was applied (and, where it
// waits for replicas, replicated); ARGV[3] "1" when the batch was sent
// before and its outcome is in doubt; ARGV[4] the key TTL in ms (0: none);
// ARGV[5] n; ARGV[6] the base, the lowest recorded seq the writer accepts
// (its floor, unless it accepted a regression); ARGV[7] m; ARGV[8] t;
// ARGV[9] the token TTL in ms; then n pairs, a counter's key and its
// delta; then m pairs, the 1-based index of a delta whose key has a TTL of
// its own and that TTL in ms (negative: set none), which replaces ARGV[4]
// for that key; then t pairs, the 1-based index of a delta with a token
// (see Delta.Token) and the token's key; then one quadruple per
// registration: the 1-based index of its delta, the sorted set, the score
// and the member, added with ZADD NX before the delta.
//
// A delta with a token applies only if SET NX PX creates the token's key:
// one whose token is there already is not applied and is reported as
// seen. The deltas of one key whose tokens were new are summed into one
// INCRBY after the loop (so a busy counter costs a SET per token and an
// INCRBY per batch, not two commands per token), as long as the sum stays
// an integer a Lua number holds exactly (below 2^53); a larger delta has
// an INCRBY of its own. When the INCRBY or the registration of a delta
// with a token fails, its token is deleted again: the delta was not
// applied, and a resend must be able to apply it.
//
// Only the record is declared in KEYS. On a Cluster, a script declaring
// keys of several slots is refused whole (CROSSSLOT), whatever its flags;
// undeclared keys of several slots are allowed with the
// allow-cross-slot-keys flag (see clusterApply), each only if the node
// serves it at that moment, as Redis checks every command a script runs:
// a key of a slot the node does not own, or is migrating away and no
// longer holds the key, or is importing, is refused ("... non local key
// ..."), and the script goes on with the others. The record keeps which
// keys a batch did not apply, so a resend that finds the batch applied
// reports the same ones: they go back to the Source, to be sent to their
// master in a later batch. See "Redis Cluster" in the package
// documentation.
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
// It returns {1, errors, seen} when it applied the batch now, {0, errors,
// seen} when the batch had been applied before, {2, {}} when it is out of
// order, {3, {}} when the record was lost while the batch was in doubt
// and {4, seq} when the record regressed below the base; errors is
// {index, message, ...} for the keys Redis refused (the index negated
// when Redis refused the delta's registration), and seen the indexes
// of the deltas whose token Redis held (left out when there are none),
// both kept in the record so that a resend finding the batch applied
// reports them again. redis.pcall keeps
// one refused key from aborting the script: Redis would not roll back the
// INCRBYs already done. For the same reason every command that can fail
// runs before the record is written, and a failed registration skips its
// delta.
var applySource = `
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
    if rec[1] == seq then return {0, rec[2], rec[3]} end
  end
  return {0, {}}
end
if last ~= seq - 1 and tonumber(ARGV[2]) ~= seq - 1 then
  return {2, {}}
end
local failed, seen = {}, {}
local keyttl = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local m = tonumber(ARGV[7])
local t = tonumber(ARGV[8])
local ttl, token, reg = {}, {}, {}
local j = 10 + 2 * n
for _ = 1, m do
  ttl[tonumber(ARGV[j])] = tonumber(ARGV[j + 1])
  j = j + 2
end
for _ = 1, t do
  token[tonumber(ARGV[j])] = ARGV[j + 1]
  j = j + 2
end
for k = j, #ARGV, 4 do
  reg[tonumber(ARGV[k])] = k
end
-- Per key, the deltas whose tokens were new, summed for one INCRBY after
-- the loop: {sum, ttl, index, ...}; summed lists the keys in order.
local sums, summed = {}, {}
-- Locals, not globals, in the loop that runs once per key.
local argv, pcall, type = ARGV, redis.pcall, type
local function fail(i, r)
  -- Redis checks maxmemory at a script's first write only: a refusal
  -- here means nothing was written, so refuse the batch as a whole.
  if string.sub(r.err, 1, 3) == 'OOM' then return r end
  failed[#failed + 1] = i
  failed[#failed + 1] = r.err
end
-- sum adds delta i to its key's sum and reports whether it could: a Lua
-- number holds integers exactly only below 2^53.
local function sum(key, i, delta)
  local x = tonumber(delta)
  if math.abs(x) >= 2^53 then return false end -- x itself may be rounded
  local s = sums[key]
  if s == nil then
    s = {0, ttl[i] or keyttl}
    sums[key] = s
    summed[#summed + 1] = key
  end
  if math.abs(s[1] + x) >= 2^53 then return false end
  s[1] = s[1] + x
  s[#s + 1] = i
  return true
end
-- A batch of plain deltas (no token, registration or TTL of their own:
-- the common case) takes a loop of its own: the general one's bookkeeping
-- per key costs Redis about a tenth more CPU than the INCRBYs themselves.
local plain = t == 0 and m == 0 and next(reg) == nil
for i = 1, plain and n or 0 do
  local key = argv[8 + 2 * i]
  local r = pcall('INCRBY', key, argv[9 + 2 * i])
  if type(r) == 'table' then
    local oom = fail(i, r)
    if oom then return oom end
  elseif keyttl > 0 then
    redis.call('PEXPIRE', key, keyttl)
  end
end
for i = 1, plain and 0 or n do
  local key, delta, tok, k = argv[8 + 2 * i], argv[9 + 2 * i], token[i], reg[i]
  local apply, set, err, at = tok == nil, false, nil, i
  if tok then
    local r = pcall('SET', tok, 1, 'NX', 'PX', argv[9])
    if r == false then
      seen[#seen + 1] = i -- the token is there: this add was applied before
    elseif r.err then
      err = r
    else
      apply, set = true, true
    end
  end
  if apply and k then
    local r = pcall('ZADD', argv[k + 1], 'NX', argv[k + 2], argv[k + 3])
    if type(r) == 'table' then apply, err, at = false, r, -i end
  end
  if apply and not (set and sum(key, i, delta)) then
    local r = pcall('INCRBY', key, delta)
    if type(r) == 'table' then
      err = r
    elseif (ttl[i] or keyttl) > 0 then
      redis.call('PEXPIRE', key, ttl[i] or keyttl)
    end
  end
  if err then
    local oom = fail(at, err)
    if oom then return oom end
    if set then redis.call('DEL', tok) end
  end
end
for _, key in ipairs(summed) do
  local s = sums[key] -- sum made it with one index at least
  local r = pcall('INCRBY', key, string.format('%.0f', s[1]))
  if type(r) == 'table' then
    -- Not the script's first write: no OOM here (see fail).
    for k = 3, #s do
      fail(s[k], r)
      redis.call('DEL', token[s[k]])
    end
  elseif s[2] > 0 then
    redis.call('PEXPIRE', key, s[2])
  end
end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 't', now[1] * 1000 + math.floor(now[2] / 1000))
if #failed > 0 or #seen > 0 then
  redis.call('HSET', KEYS[1], field, cjson.encode({seq, failed, seen}))
end
if #seen == 0 then return {1, failed} end -- a reply go-redis parses without one more slice
return {1, failed, seen}
`

// applyScript runs applySource on a single node or a failover client.
var applyScript = newLuaScript(applySource)

// clusterApply runs applySource on a Redis Cluster master, for batches
// whose keys span the master's slots. The shebang flag, Redis 7.0 and
// later, lets a script reach undeclared keys of several slots; older
// servers cannot compile it (see ErrScriptRejected).
var clusterApply = newLuaScript("#!lua flags=allow-cross-slot-keys\n" + applySource)

// luaScript holds the first two arguments of EVAL and of EVALSHA for a
// script, boxed once: a batch builds its command by hand (see
// Flusher.pipeline) so that no argument costs an allocation.
type luaScript struct {
	eval, evalSHA [2]any
}

func newLuaScript(src string) *luaScript {
	sum := sha1.Sum([]byte(src))
	return &luaScript{
		eval:    [2]any{"eval", src},
		evalSHA: [2]any{"evalsha", hex.EncodeToString(sum[:])},
	}
}

// Outcomes of applySource.
const (
	outcomeDuplicate  = 0
	outcomeApplied    = 1
	outcomeOutOfOrder = 2
	outcomeLost       = 3
	outcomeRegressed  = 4
)

// scriptReply is a parsed reply of applySource.
type scriptReply struct {
	outcome int64             // one of the outcomes above
	failed  map[int]refusedBy // 0-based delta index → why Redis refused it
	seen    map[int]bool      // 0-based indexes of the deltas whose token Redis held
	last    uint64            // outcomeRegressed: the seq recorded
}

// refusedBy is why Redis refused a delta in a batch: its message, and
// whether it refused the delta's registration rather than its INCRBY.
type refusedBy struct {
	msg          string
	registration bool
}

func parseScriptReply(v any) (scriptReply, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
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
		if !ok || idx == 0 {
			return scriptReply{}, fmt.Errorf("flush: unexpected script reply %v", v)
		}
		if r.failed == nil {
			r.failed = map[int]refusedBy{}
		}
		by := refusedBy{msg: msg}
		if idx < 0 {
			idx, by.registration = -idx, true
		}
		r.failed[int(idx)-1] = by
	}
	if len(arr) > 2 {
		seen, _ := arr[2].([]any)
		for _, x := range seen {
			idx, ok := x.(int64)
			if !ok {
				return scriptReply{}, fmt.Errorf("flush: unexpected script reply %v", v)
			}
			if r.seen == nil {
				r.seen = map[int]bool{}
			}
			r.seen[int(idx)-1] = true
		}
	}
	return r, nil
}
