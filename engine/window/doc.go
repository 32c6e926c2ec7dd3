// Package window counts per time window on top of an engine, and
// publishes each closed window's total to a queue.
//
//	views, err := window.New(e, "pv:/home", window.Options{Size: time.Minute})
//	views.Inc()                                     // this minute's counter
//	r, err := window.StartRollup(ctx, e, q, window.RollupOptions{})
//	defer r.Close(ctx)
//
// A window is an engine counter of its own (its name carries the window's
// size and start), so it costs what any counter costs: a few nanoseconds
// per Add, one write per flush interval. Every flush that writes a window
// also registers it, in the same atomic step, in the group's set of
// windows pending finalization (engine.CounterOptions.Register), so a
// window with a count in Redis cannot be missed by the rollup, whatever
// the outages.
//
// One process at a time, the holder of the group's rollup lease (package
// lease), finalizes each window once its end plus a grace period has
// passed: it records the window's total once in a finalization marker, then
// pushes a Record with that total onto a queue (package queue) under an
// ID derived from the window, then marks the window published. Each step
// is idempotent, so a holder that dies or is replaced mid-way leaves the
// next one to finish: every window is published with one total, under one
// message ID, at least once. A second copy arises only when a holder dies
// between its push and its mark; consumers recognise it by its ID, as
// they must for any queue message, which the queue delivers at least once.
//
// Deltas that reach Redis after their window was finalized (a writer
// slower than the grace period, or cut off from Redis for longer) count in
// the window's key but not in the published total.
package window
