// Package fakeredis is a small in-process Redis speaking RESP2 over TCP, for
// `go run ./bench` on a machine that has Go but no redis-server.
//
// It owns just enough of Redis for the plain (at-least-once) counter path
// and the naive baselines: strings and integers (GET, SET with NX/XX/EX/PX,
// INCR, INCRBY, DECR, DECRBY, DEL, EXISTS, MGET, EXPIRE, PEXPIRE, TTL,
// PTTL), lists (RPUSH, LPUSH, LPOP, RPOP, LLEN), DBSIZE, FLUSHALL, FLUSHDB,
// PING, ECHO, SELECT 0, CLIENT (accepted and ignored), and INFO with the
// "stats" and "commandstats" sections so callers can read the server's own
// command count, as they would from a real Redis.
//
// It does not do Lua (EVAL, EVALSHA and SCRIPT answer with an error, so
// abacus' exactly-once mode cannot run on it), RESP3 (HELLO answers with an
// error and go-redis falls back to RESP2), persistence, replication,
// Cluster, transactions, blocking commands or pub/sub. It is one map under
// one mutex: correct, not fast, and never a substitute for Redis in
// production or in the library's tests.
package fakeredis
