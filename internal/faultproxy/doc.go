// Package faultproxy is a TCP proxy for tests that sits between a Redis
// client and a Redis server and injects real network faults on command:
// connections reset mid-command, requests delivered but their replies lost,
// replies held past a client's read timeout, silent partitions, refused
// connections, and a Chaos mode that mixes them at random intervals.
//
// The faults are real, not simulated in the client: a request forwarded
// before DropNextReply cuts the connection reached Redis and was applied, so
// a client genuinely cannot tell whether its command took effect. That is
// what tests of exactly-once flushing, leases and queues need.
//
// The proxy copies bytes; it does not parse RESP. Faults therefore act on
// whatever bytes are in flight: with pipelining, DropNextReply drops the
// replies that follow the chosen request, whichever commands they answer.
// It is a test helper: it reports its own failures through testing.TB and
// is closed when the test ends.
package faultproxy
