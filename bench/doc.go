// Command bench measures abacus against the naive ways of doing the same
// thing on Redis, and tunes the flush interval.
//
//	go run ./bench                 # compare (the default subcommand)
//	go run ./bench tune -max-staleness 500ms -plot tune.png
//
// Redis is the one at -redis or $REDIS_URL; without one, bench spawns
// redis-server from PATH on a free loopback port (killed on exit), and
// without that it runs miniredis (github.com/alicebob/miniredis/v2) in this
// process and says so: every row runs there, scripts included, but its
// figures are in-process ones, not a Redis server's. The first line on
// stderr always names the Redis used.
//
// compare measures, from -concurrency goroutines, -duration per row in
// -rounds interleaved rounds (each round runs every row once; a row
// reports its median and range): INCR per event (one connection; a pool),
// what a user would pick instead (go-redis pipelines of -pipeline INCRs,
// go-redis AutoPipeline, rueidis' automatic pipelining), the engine
// (exactly-once and at-least-once, one hot counter through a held handle,
// and Add(name) over -keys names; each ends with Close), serial.Allocator.Next,
// lease TryAcquire+Release against raw SET NX PX + DEL, unique counts
// against PFADD per event, retry-safe adds (AddOnce) against SET NX then
// INCRBY per event, and queue Push+Consume against naive LPUSH+RPOP. Counter rows check that the Redis
// total equals what was counted. The headline divides the engine by the
// fastest alternative and by INCR per event, round by round; engine rows
// also report the staleness the engine observed (Stats.MaxStaleness). On
// a server in this process (the fallback) nothing is compared.
// Redis commands per second come from the server (INFO commandstats
// deltas). With -json the report is JSON; its schema is documented in
// README.md next to this file and identified by the "schema" field
// (SchemaCompare).
//
// tune runs a load profile through the engine at each flush interval of a
// sweep and measures Redis load, staleness seen by reading Redis, process
// CPU and the worst-case loss on crash; see package
// github.com/abacus-go/abacus/bench/tune, which does the work and can be
// driven from code.
package main
