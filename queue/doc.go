// Package queue owns a reliable work queue kept in Redis lists, with
// lease-coordinated reclaiming of dead consumers' messages and exclusive,
// ordered, fenced draining.
//
//	q, err := queue.New(rdb, "emails", queue.Options{})
//	ids, err := q.Push(ctx, body1, body2)            // one round trip (+ WAIT with a replica)
//	if err != nil {
//		err = q.PushWithIDs(ctx, ids, body1, body2) // a retry keeps the IDs
//	}
//	err = q.Consume(ctx, func(ctx context.Context, m queue.Message) error {
//		return send(m.Body)                          // nil acks; an error retries
//	})
//
// # Delivery
//
// Delivery is at least once. [Queue.Consume] moves messages from the ready
// list into a processing list of its own (a Lua script per batch of up to
// Options.Prefetch while the queue is busy, BLMOVE while it is idle) and
// removes them only after the handler returned nil, so a consumer that
// crashes loses nothing: its messages are delivered again. Every message
// carries an [ID], set by [Queue.Push] and kept on every redelivery, so a
// handler that must not repeat a side effect can recognise duplicates.
// Only messages a consumer held when it died (at most Options.Prefetch per
// consumer) are delivered twice; handled messages are acknowledged per
// batch, in one script that is sent each message's 17-byte header
// (version and ID), never its body.
//
// The scripts move, look up and acknowledge a batch with one command each
// (RPOP and LPUSH of the batch, HMGET of its failure counts, RPOP out of
// the processing list), so the server's work per message falls as batches
// grow. On a busy queue, a message pushed alone costs the server its LPUSH
// and about 0.26 more commands up to its acknowledgement, at the default
// Prefetch and in about one round trip; when consumers keep up with
// producers, batches are small and a message costs about 4.7 commands
// and 2 round trips (TestCommandsPerMessage measures both).
//
// A handler error or panic (recovered; the consumer goes on) counts a
// failed delivery and puts the message back at the end of the ready list;
// after Options.MaxAttempts failures it goes to the dead-letter list
// ([Keys].Dead). Entries not in the queue's format ([Encode]) are
// dead-lettered at once.
//
// # Replicas and failover
//
// Redis replication is asynchronous: a push the master acknowledged can
// vanish when a replica that had not received it is promoted, and a master
// that a failover demoted keeps accepting writes for a moment. So a Push
// returns nil only once Options.Replicas replicas acknowledged it (WAIT at
// the end of its pipeline, on the same connection to the queue's master:
// one WAIT per call, however many messages). By default ("auto") that is
// one as soon as the queue's master has, or lately had, a replica, and
// none on a Redis without replicas, at no cost there. A Push they did not
// acknowledge in Options.ReplicaTimeout returns a [*ReplicationError]
// (ErrNotReplicated) with the IDs: the messages may or may not be in the
// queue, and [Queue.PushWithIDs] retries them under the same IDs. So no
// message whose Push returned nil is lost by promoting a replica that
// acknowledged it; a retry may deliver a message twice, same ID.
//
// The takes of consumers and Drain WAIT too (once per batch of up to
// Prefetch, in the same round trip), and a take the replicas did not
// acknowledge is not handed to the handler: it is retried, and reported to
// Options.OnError. Without that, consumers still attached to a demoted
// master would handle messages that the new master delivers again.
// Acknowledgements, nacks and reclaims do not WAIT: one lost in a failover
// only brings back a message that was in a consumer's hands at the time,
// which is then delivered again (at most Prefetch per consumer per
// failover). The queue's leases wait for the same replicas (package lease).
//
// While the replicas wanted are unreachable, Push fails and consumers
// pause; Options.Replicas -1 trades that for the losses above.
//
// # Consumers, reclaimer, Drain
//
// Each consumer holds a heartbeat lease (package lease, auto-renewed). A
// reclaimer runs inside Consume on whichever process holds the queue's
// reclaimer lease: every Options.ReclaimInterval it moves the messages of
// consumers whose lease is gone back to the head of the ready list. So a
// crashed consumer's messages are redelivered about one Options.LeaseTTL
// after the crash, as long as some Consume call is running.
//
// [Queue.Drain] processes the queue exclusively, one owner at a time, in
// push order; its moves and acknowledgements are checked in Lua against the
// owner's lease token and fencing number, so a stale owner can change
// nothing ([ErrFenced]). A step whose reply was lost is sent again until
// Redis answers, and a repeat changes nothing: a retried nack counts one
// failure.
//
// # Keys and Redis Cluster
//
// All keys of queue "q" start with Options.Prefix + "{q}:" (see [KeysFor]),
// the leases included, so they share one Redis Cluster slot and every
// script runs atomically on one node. One queue is therefore served by one
// node; spread load over several queues.
//
// # Limits and errors
//
// A body may be up to Options.MaxMessageBytes (default 512 KiB); Push of a
// larger one returns a [*SizeError] and pushes nothing of that call. Bad
// names and options return an [*InvalidError]; both wrap sentinels
// ([ErrTooLarge], [ErrInvalid]) for errors.Is.
//
// # Not done
//
// No delayed or scheduled messages, priorities, or exactly-once delivery.
// A consumer paused for longer than Options.RetireAfter between its last
// lease check and its BLMOVE reaching Redis could strand that one message
// in an unregistered processing list. Durability is that of Redis and
// its replicas: a message acknowledged by Push survives what the server's
// persistence settings make it survive, and the promotion of a replica that
// acknowledged it; a replica promoted without it (one that did not count
// towards Options.Replicas) loses it.
package queue
