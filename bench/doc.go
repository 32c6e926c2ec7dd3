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
// compare measures, for -duration each, from -concurrency goroutines:
// naive INCR (one connection; a pool), a pipelined INCR loop, the engine
// (exactly-once and at-least-once, one hot counter through a held handle,
// and Add(name) over -keys names; each ends with Close and checks that the
// Redis total equals what was added), serial.Allocator.Next against naive
// INCR per ID, lease TryAcquire+Release against raw SET NX PX + DEL, and
// queue Push+Consume against naive LPUSH+RPOP.
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
