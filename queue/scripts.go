package queue

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/script"
)

// Every script touches only keys of one queue, all hash-tagged {name}, so
// each runs atomically on the one Redis Cluster node that owns the queue.
// A message's ID is bytes 2..17 of its stored form (see Encode); the
// attempts hash counts failed deliveries per ID and only holds IDs that
// failed at least once. The settle scripts are sent a message's ref
// (bytes 1..17, see ref), never its body, and find the message by it.

// ref returns what a settle script is given to find a stored message by:
// its header (format version and ID), or the whole entry when it is shorter
// than that (malformed). A malformed entry's ref never equals a
// well-formed message's: it starts with another byte or is shorter.
func ref(raw []byte) []byte { return raw[:min(len(raw), headerLen)] }

// batchLua defines the helpers that send one command for many values
// (LPUSH, RPUSH, HDEL, HMGET), so that a batch of messages costs the
// server one command, not one per message. They cut the values into
// chunks, since unpack is bounded by the Lua stack (LUAI_MAXCSTACK, 8000
// in Redis) and Prefetch is not.
const batchLua = `
local function callWith(cmd, key, vals)
	for i = 1, #vals, 1000 do
		redis.call(cmd, key, unpack(vals, i, math.min(i + 999, #vals)))
	end
end
local function hmgetAll(key, fields)
	local out = {}
	for i = 1, #fields, 1000 do
		local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + 999, #fields)))
		for j = 1, #part do out[#out + 1] = part[j] end
	end
	return out
end
`

// failLua defines fail, the one place the dead-letter rule is: it counts
// a failed delivery of message m (ID id) in the attempts hash and sorts m
// into dead, its count to be cleared, once it failed max times, else
// into ready.
const failLua = `
local function fail(attempts, m, id, max, ready, dead, cleared)
	if redis.call('HINCRBY', attempts, id, 1) >= max then
		cleared[#cleared + 1] = id
		dead[#dead + 1] = m
	else
		ready[#ready + 1] = m
	end
end
`

// takeScript moves up to ARGV[2] messages from the ready list to a
// consumer's processing list, oldest first, and returns them interleaved
// with their failure counts. KEYS: ready, proc, attempts, consumer lease.
// ARGV: lease token, count, and "1" when a WAIT follows. It returns the
// error LOST, moving nothing, when the consumer's lease no longer holds
// its token: the reclaimer may already have retired it.
//
// A consumer takes only when it holds nothing, so whatever is still in its
// processing list was taken by a call whose reply was lost (and which was
// retried), could not be settled, or was moved there by BLMOVE: it is
// returned first, oldest first, and counts towards ARGV[2]. A repeated take
// therefore strands nothing.
//
// The server runs a fixed number of commands per take, whatever the
// batch: one RPOP of the batch and one LPUSH of it, which leave the
// processing list as one LMOVE per message would (the oldest rightmost),
// and one HMGET of the failure counts.
//
// When a WAIT follows, the script writes whenever it returns something
// (the LPUSH, or an LMOVE of the processing list onto itself that changes
// nothing), because WAIT counts the replicas that have the writes of its
// own connection: the WAIT then covers the moves of every message
// returned, including those made earlier on other connections.
var takeScript = redis.NewScript(batchLua + `
if redis.call('GET', KEYS[4]) ~= ARGV[1] then
	return redis.error_reply('LOST consumer lease')
end
local held = redis.call('LRANGE', KEYS[2], 0, -1)
local out = {}
for i = #held, 1, -1 do out[#out + 1] = held[i] end
local more = tonumber(ARGV[2]) - #held
-- RPOP with a count returns the oldest first, or nil on an empty list.
local moved = more > 0 and redis.call('RPOP', KEYS[1], more)
if moved then
	callWith('LPUSH', KEYS[2], moved)
	for i = 1, #moved do out[#out + 1] = moved[i] end
elseif #held > 0 and ARGV[3] == '1' then
	-- A write that changes nothing, so that the WAIT covers the
	-- (earlier, maybe unconfirmed) moves of what this returns.
	redis.call('LMOVE', KEYS[2], KEYS[2], 'RIGHT', 'RIGHT')
end
if #out == 0 then return {} end
local ids = {}
for i = 1, #out do ids[i] = string.sub(out[i], 2, 17) end
local failures = hmgetAll(KEYS[3], ids)
local reply = {}
for i = 1, #out do
	reply[2 * i - 1] = out[i]
	reply[2 * i] = tonumber(failures[i] or '0')
end
return reply
`)

// settleScript settles the batch a consumer took, finding each message
// in the processing list by its ref, so that no body travels back to
// Redis. KEYS: proc, ready, dead, attempts. ARGV[1] = max attempts, then
// triples (op, ref, failures as the take returned them) with op
//
//	a  ack: remove it, and its failure count if it had failures
//	n  nack: remove it, count a failure, and push it back on the ready
//	   list, or onto the dead-letter list after max attempts
//	r  return unhandled: remove it and put it back at the head of the
//	   ready list, counting no failure
//	d  dead-letter it at once (malformed)
//
// The batch is the oldest entries of the processing list, its right end
// (later moves land at the left), so one RPOP of as many entries as the
// batch has takes it out; an entry popped that is not in the batch is put
// back where it was. A message not found was reclaimed meanwhile, or
// settled by an earlier run of this call whose reply was lost, and is left
// alone: a repeated settle does nothing. So acknowledging a batch costs the
// server two commands (the script and the RPOP) however large it is, plus
// one HDEL when an acknowledged message had failed before. Messages are
// handled newest first, so returned ones keep their order (the oldest ends
// rightmost, next to be taken). Returns the number of messages found.
//
// The failure count travels with the op because only a message that failed
// before has one to remove; one that did not needs no command. If a copy
// with the same ID (a retried push) fails after this one was taken, its
// count stays for that copy, whose own settle removes it.
var settleScript = redis.NewScript(batchLua + failLua + `
local want, n = {}, 0
for i = 2, #ARGV, 3 do
	local ops = want[ARGV[i + 1]]
	if not ops then
		ops = {}
		want[ARGV[i + 1]] = ops
	end
	ops[#ops + 1] = i
	n = n + 1
end
local popped = n > 0 and redis.call('RPOP', KEYS[1], n)
if not popped then return 0 end
local max = tonumber(ARGV[1])
local found = 0
local keep, ready, returned, dead, cleared = {}, {}, {}, {}, {}
for i = #popped, 1, -1 do
	local m = popped[i]
	local ops = want[string.sub(m, 1, 17)]
	local at = ops and table.remove(ops)
	if not at then
		keep[#keep + 1] = m
	else
		found = found + 1
		local op, id = ARGV[at], string.sub(m, 2, 17)
		if op == 'a' then
			if ARGV[at + 2] ~= '0' then cleared[#cleared + 1] = id end
		elseif op == 'r' then
			returned[#returned + 1] = m
		elseif op == 'd' then
			cleared[#cleared + 1] = id
			dead[#dead + 1] = m
		else
			fail(KEYS[4], m, id, max, ready, dead, cleared)
		end
	end
end
callWith('RPUSH', KEYS[1], keep)
callWith('RPUSH', KEYS[2], returned)
callWith('LPUSH', KEYS[2], ready)
callWith('LPUSH', KEYS[3], dead)
callWith('HDEL', KEYS[4], cleared)
return found
`)

// reclaimScript returns the messages of a consumer whose lease is gone to
// the head of the ready list, in their original order. KEYS: consumers,
// proc, consumer lease, consumer lease fence, ready, dead, attempts. ARGV:
// consumer ID, retire-after in ms, max attempts, graceful (1: the consumer
// itself retiring, so no failure is counted).
//
// It returns -1 when the lease is still held, else the number of messages
// moved. The first time it finds the consumer dead it marks it with the
// time; once it has been dead longer than retire-after with nothing left to
// move, it unregisters it. Keeping dead consumers registered that long
// catches a BLMOVE that the consumer sent just before its lease ended and
// Redis served after a reclaim.
var reclaimScript = redis.NewScript(batchLua + failLua + `
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local all = redis.call('LRANGE', KEYS[2], 0, -1)
-- Index 1 is the newest; pushing newest first onto the right end leaves
-- the oldest rightmost, next to be taken.
local ready, dead, cleared = {}, {}, {}
for i = 1, #all do
	local m = all[i]
	local id = string.sub(m, 2, 17)
	if ARGV[4] == '1' then
		ready[#ready + 1] = m
	else
		fail(KEYS[7], m, id, tonumber(ARGV[3]), ready, dead, cleared)
	end
end
callWith('RPUSH', KEYS[5], ready)
callWith('LPUSH', KEYS[6], dead)
callWith('HDEL', KEYS[7], cleared)
if #all > 0 then redis.call('DEL', KEYS[2]) end
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return #all end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(s) == 0 then
	redis.call('ZADD', KEYS[1], now, ARGV[1])
elseif #all == 0 and now - tonumber(s) > tonumber(ARGV[2]) then
	redis.call('ZREM', KEYS[1], ARGV[1])
	redis.call('DEL', KEYS[4])
end
return #all
`)

// drainTakeScript gives the Drain owner its next message: the oldest one
// left in the drain list (by a dead owner, or a failed attempt to retry),
// else the oldest ready one, moved into the drain list. KEYS: drain lease,
// drain fence, ready, drain list, attempts. ARGV: token, fence. It returns
// {} when the queue is empty, {message, failures} otherwise, and the error
// FENCED, changing nothing, unless the caller's token holds the lease and
// its fence is the latest. Like takeScript, it writes whenever it returns
// a message.
var drainTakeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then
	return redis.error_reply('FENCED drain lease no longer held')
end
local m = redis.call('LINDEX', KEYS[4], -1)
if m then
	-- A write that changes nothing, so that a WAIT after this script
	-- covers the earlier move of m (see takeScript).
	redis.call('LMOVE', KEYS[4], KEYS[4], 'RIGHT', 'RIGHT')
else
	m = redis.call('LMOVE', KEYS[3], KEYS[4], 'RIGHT', 'LEFT')
	if not m then return {} end
end
return {m, tonumber(redis.call('HGET', KEYS[5], string.sub(m, 2, 17)) or '0')}
`)

// drainSettleScript settles the Drain owner's current message, the tail
// of the drain list. KEYS: drain lease, drain fence, drain list, dead,
// attempts. ARGV: token, fence, max attempts, op (a ack, n nack, d dead),
// the message's ref, and its failure count as the owner's take returned
// it. A nacked message under the limit stays at the tail of the drain
// list, to be retried before anything newer: order is kept. Returns 1 if
// the message left the drain list, else 0, and the error FENCED, changing
// nothing, unless the caller holds the lease with the latest fence.
//
// A repeated settle (its first reply was lost) changes nothing: an ack or
// dead-letter finds the tail gone, and a nack finds the failure count
// already past the one it was taken with.
var drainSettleScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then
	return redis.error_reply('FENCED drain lease no longer held')
end
local m = redis.call('LINDEX', KEYS[3], -1)
if not m or string.sub(m, 1, 17) ~= ARGV[5] then return 0 end
local id = string.sub(m, 2, 17)
local op = ARGV[4]
if op == 'n' then
	local n = tonumber(redis.call('HGET', KEYS[5], id) or '0')
	if n ~= tonumber(ARGV[6]) then return 0 end
	if n + 1 < tonumber(ARGV[3]) then
		redis.call('HSET', KEYS[5], id, n + 1)
		return 0
	end
	op = 'd'
end
redis.call('RPOP', KEYS[3])
redis.call('HDEL', KEYS[5], id)
if op == 'd' then redis.call('LPUSH', KEYS[4], m) end
return 1
`)

// run runs s (script.Run): EVALSHA, and EVAL when the server has not
// cached it (a new or restarted node).
func run(ctx context.Context, rdb redis.Scripter, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd, _ := script.Run(ctx, rdb, s, keys, args...)
	return cmd
}
