package queue

import (
	"context"

	"github.com/redis/go-redis/v9"
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

// takeScript moves up to ARGV[2] messages from the ready list to a
// consumer's processing list, oldest first, and returns them interleaved
// with their failure counts. KEYS: ready, proc, attempts, consumer lease.
// ARGV: lease token, count. It returns the error LOST, moving nothing, when
// the consumer's lease no longer holds its token: the reclaimer may already
// have retired it.
//
// A consumer takes only when it holds nothing, so whatever is still in its
// processing list was taken by a call whose reply was lost (and which was
// retried) or could not be settled: it is returned first, oldest first,
// and counts towards ARGV[2]. A repeated take therefore strands nothing.
//
// The script writes whenever it returns something (an LMOVE, or one of
// the processing list onto itself that changes nothing), because WAIT
// counts the replicas that have the writes of its own connection: a WAIT
// after it then covers the moves of every message returned, including
// those made earlier on other connections.
var takeScript = redis.NewScript(`
if redis.call('GET', KEYS[4]) ~= ARGV[1] then
	return redis.error_reply('LOST consumer lease')
end
local out = {}
local held = redis.call('LRANGE', KEYS[2], 0, -1)
for i = #held, 1, -1 do
	out[#out + 1] = held[i]
	out[#out + 1] = tonumber(redis.call('HGET', KEYS[3], string.sub(held[i], 2, 17)) or '0')
end
local moved = 0
for i = #held + 1, tonumber(ARGV[2]) do
	local m = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
	if not m then break end
	moved = moved + 1
	out[#out + 1] = m
	out[#out + 1] = tonumber(redis.call('HGET', KEYS[3], string.sub(m, 2, 17)) or '0')
end
if moved == 0 and #held > 0 then
	-- A write that changes nothing, so that a WAIT after this script
	-- covers the (earlier, maybe unconfirmed) moves of what it returns.
	redis.call('LMOVE', KEYS[2], KEYS[2], 'RIGHT', 'RIGHT')
end
return out
`)

// settleScript settles messages a consumer took, finding each in the
// processing list by its ref, so that no body travels back to Redis.
// KEYS: proc, ready, dead, attempts. ARGV[1] = max attempts, then pairs
// (op, ref) with op
//
//	a  ack: remove it
//	n  nack: remove it, count a failure, and push it back on the ready
//	   list, or onto the dead-letter list after max attempts
//	r  return unhandled: remove it and put it back at the head of the
//	   ready list, counting no failure
//	d  dead-letter it at once (malformed)
//
// A message no longer in the processing list was reclaimed meanwhile, or
// settled by an earlier run of this call whose reply was lost, and is left
// alone: a repeated settle does nothing. The list is walked newest first,
// so returned messages keep their order (the oldest ends rightmost, next
// to be taken). Returns the number of messages found.
var settleScript = redis.NewScript(`
local want = {}
for i = 2, #ARGV, 2 do
	local ops = want[ARGV[i + 1]]
	if not ops then
		ops = {}
		want[ARGV[i + 1]] = ops
	end
	ops[#ops + 1] = ARGV[i]
end
local max = tonumber(ARGV[1])
local found = 0
local held = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #held do
	local m = held[i]
	local ops = want[string.sub(m, 1, 17)]
	local op = ops and table.remove(ops)
	if op then
		found = found + 1
		redis.call('LREM', KEYS[1], 1, m)
		local id = string.sub(m, 2, 17)
		if op == 'a' then
			redis.call('HDEL', KEYS[4], id)
		elseif op == 'r' then
			redis.call('RPUSH', KEYS[2], m)
		elseif op == 'd' then
			redis.call('HDEL', KEYS[4], id)
			redis.call('LPUSH', KEYS[3], m)
		elseif redis.call('HINCRBY', KEYS[4], id, 1) >= max then
			redis.call('HDEL', KEYS[4], id)
			redis.call('LPUSH', KEYS[3], m)
		else
			redis.call('LPUSH', KEYS[2], m)
		end
	end
end
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
var reclaimScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local all = redis.call('LRANGE', KEYS[2], 0, -1)
-- Index 1 is the newest; pushing newest first onto the right end leaves
-- the oldest rightmost, next to be taken.
for i = 1, #all do
	local m = all[i]
	local id = string.sub(m, 2, 17)
	local n = 0
	if ARGV[4] ~= '1' then n = redis.call('HINCRBY', KEYS[7], id, 1) end
	if n >= tonumber(ARGV[3]) then
		redis.call('HDEL', KEYS[7], id)
		redis.call('LPUSH', KEYS[6], m)
	else
		redis.call('RPUSH', KEYS[5], m)
	end
end
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

// run runs s with EVALSHA, falling back to EVAL when the server has not
// cached it (a new or restarted node).
func run(ctx context.Context, rdb redis.Scripter, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	return s.Run(ctx, rdb, keys, args...)
}
