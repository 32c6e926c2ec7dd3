package lease

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/script"
)

// replicatedLua defines replicated(), the check a write script makes
// first when ARGV[3] is "1" (see replication): true when this master has a
// replica connected, or had one within repl-backlog-ttl (the backlog stays
// active; default one hour). The second case is the old master just after
// a failover: its replica left to become master, and whatever it accepts
// now is lost when it is demoted. Where INFO is refused (renamed away) it
// answers false, as replicas.Policy does when its probe fails.
const replicatedLua = `
local function replicated()
	local info = redis.pcall('INFO', 'replication')
	if type(info) ~= 'string' then
		return false
	end
	local n = tonumber(string.match(info, 'connected_slaves:(%d+)') or '0')
	return n > 0 or string.match(info, 'repl_backlog_active:1') ~= nil
end
`

// replyReplicated is what a write script returns when ARGV[3] was "1" and
// replicated() held: it wrote nothing, and the caller must send WAIT.
const replyReplicated = -1

// acquireScript takes KEYS[1] = lease key, KEYS[2] = fence key, ARGV[1] =
// token, ARGV[2] = TTL in ms, ARGV[3] = "1" to refuse on a replicated
// master (replicatedLua). It returns the new fence, 0 when someone else
// holds the lease, or replyReplicated.
//
// SET NX and INCR run in one script, so a fence is issued exactly when the
// lease is obtained: fences are strictly increasing in acquisition order.
var acquireScript = redis.NewScript(replicatedLua + `
if ARGV[3] == '1' and replicated() then
	return -1 -- replyReplicated
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	return redis.call('INCR', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
	-- An earlier attempt with this token won but its reply was lost (or
	-- the replicas did not acknowledge it and its release failed). Only
	-- a winner increments the fence, so the current fence is still ours.
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return tonumber(redis.call('GET', KEYS[2]))
end
return 0
`)

// refreshScript takes KEYS[1] = lease key, ARGV[1] = token, ARGV[2] = TTL in
// ms, ARGV[3] as acquireScript, and returns 1 when it extended the lease, 0
// when the token is not there, or replyReplicated.
var refreshScript = redis.NewScript(replicatedLua + `
if ARGV[3] == '1' and replicated() then
	return -1 -- replyReplicated
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript takes KEYS[1] = lease key, ARGV[1] = token, and returns 1
// when it deleted the lease, 0 when the token is not there.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// ttlScript takes KEYS[1] = lease key, ARGV[1] = token, and returns the
// key's PTTL when the token is there, -3 otherwise.
var ttlScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PTTL', KEYS[1])
end
return -3
`)

// runScript runs s (script.Run) and returns its integer reply and the
// round trips it took.
func runScript(ctx context.Context, rdb redis.Scripter, s *redis.Script, keys []string, args ...any) (int64, int, error) {
	cmd, rts := script.Run(ctx, rdb, s, keys, args...)
	n, err := cmd.Int64()
	return n, rts, err
}
