// Package metrics exports the activity of abacus' engine, serial
// allocators, leases and queues to Prometheus.
//
// A Collector reads the Stats of the values it is given each time it is
// collected; it keeps no state of its own beyond a count of failed queue
// reads. It never registers itself: the caller registers it with a
// prometheus.Registerer it chooses, and this package never touches
// Prometheus' global registry.
//
//	reg := prometheus.NewRegistry()
//	c, err := metrics.New(metrics.Options{Engine: e, Serials: []*serial.Allocator{orders}})
//	if err != nil { … }
//	reg.MustRegister(c)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Only programs that import this package depend on
// github.com/prometheus/client_golang; the other packages of the module do
// not.
//
// # Names
//
// Metric names follow Prometheus' conventions: a namespace "abacus", the
// subsystem (engine, serial, lease, queue), base units (seconds), "_total"
// on counters and "_timestamp_seconds" on points in time. Sums of deltas
// are gauges, since deltas may be negative. A serial allocator's metrics
// carry the label serial (its Redis key), a lease's the label lease (its
// name), a queue's the label queue (its name). An engine has no label: to
// export two engines, register their Collectors through
// prometheus.WrapRegistererWith with a label that tells them apart.
//
// Each metric is described with its constant labels, so registering two
// Collectors that export the same serial, lease or queue fails at
// registration, and a Collector for one lease can be registered while the
// lease is held and unregistered when it ends (see lease.Hold).
//
// Engine, from engine.Stats (the flush figures are flush.Stats'):
//
//	abacus_engine_flushes_total                  counter  flush cycles run
//	abacus_engine_flush_failures_total           counter  cycles that left batches pending or met a transport error
//	abacus_engine_flush_round_trips_total        counter  pipelines the flusher sent
//	abacus_engine_flush_commands_total           counter  Redis commands the flusher sent
//	abacus_engine_flushed_keys_total             counter  key deltas Redis applied
//	abacus_engine_flushed_delta                  gauge    sum of the deltas Redis applied
//	abacus_engine_resent_batches_total           counter  batches sent again after an unknown outcome
//	abacus_engine_duplicate_batches_total        counter  resent batches Redis had applied already
//	abacus_engine_key_errors_total               counter  deltas Redis refused for their key
//	abacus_engine_lost_batches_total             counter  batches given up in doubt
//	abacus_engine_lost_delta                     gauge    sum of their deltas
//	abacus_engine_unreplicated_batches_total     counter  batches fewer replicas than wanted acknowledged
//	abacus_engine_regressions_total              counter  writer records found behind what was applied
//	abacus_engine_regressed_delta                gauge    deltas known lost with them
//	abacus_engine_pending_batches                gauge    sent batches whose outcome is not known yet
//	abacus_engine_pending_keys                   gauge    keys in those batches
//	abacus_engine_pending_delta                  gauge    sum of their deltas
//	abacus_engine_last_flush_timestamp_seconds   gauge    end of the last flush cycle (0: none yet)
//	abacus_engine_last_flush_duration_seconds    gauge    duration of the last flush cycle
//	abacus_engine_max_flush_duration_seconds     gauge    longest flush cycle
//	abacus_engine_max_staleness_seconds          gauge    observed staleness bound
//	abacus_engine_counters                       gauge    distinct counter names in memory
//	abacus_engine_rejected_adds_total            counter  Adds after Close, dropped
//	abacus_engine_evicted_counters_total         counter  idle counters evicted from memory
//	abacus_engine_discarded_delta                gauge    deltas dropped by Discard
//	abacus_engine_collected_records_total        counter  stale writer records deleted
//	abacus_engine_reads_total                    counter  Value calls
//	abacus_engine_read_cache_hits_total          counter  Value calls answered from the read cache
//	abacus_engine_read_round_trips_total         counter  GETs sent for Value
//	abacus_engine_unique_counts                  gauge    unique counts (HyperLogLog) in memory
//	abacus_engine_unique_commands_total          counter  Redis commands their flushes sent
//	abacus_engine_unique_registers_total         counter  registers written, as Redis confirmed
//	abacus_engine_unique_failures_total          counter  writes that failed and were resent
//	abacus_engine_unique_refusals_total          counter  writes Redis refused for their key
//	abacus_engine_once_adds_total                counter  AddOnce calls with a token new to the process
//	abacus_engine_once_dropped_total             counter  AddOnce calls dropped in the process (token held)
//	abacus_engine_once_applied_total             counter  token adds Redis applied
//	abacus_engine_once_seen_total                counter  token adds Redis refused: it held the token
//	abacus_engine_once_lost_total                counter  token adds whose batch was given up in doubt
//	abacus_engine_once_pending                   gauge    token adds not yet confirmed by Redis
//	abacus_engine_once_remembered_tokens         gauge    flushed tokens whose retries are dropped locally
//	abacus_engine_once_backlogged_total          counter  AddOnce calls turned away (ErrTokenBacklog)
//
// Serial allocators, from serial.Stats, labelled serial:
//
//	abacus_serial_issued_ids_total               counter  IDs handed out
//	abacus_serial_blocks_total                   counter  blocks accepted from Redis
//	abacus_serial_round_trips_total              counter  block fetches sent
//	abacus_serial_fetch_errors_total             counter  fetches that failed
//	abacus_serial_unreplicated_blocks_total      counter  blocks discarded for want of replicas
//	abacus_serial_regressions_total              counter  blocks refused because Redis went backwards
//	abacus_serial_waits_total                    counter  calls that had to wait for Redis
//	abacus_serial_failing_fetches                gauge    fetches failed since the last success
//	abacus_serial_wait_replicas                  gauge    replicas the last fetch waited for
//	abacus_serial_block_size                     gauge    IDs the next fetch requests
//	abacus_serial_block_remaining                gauge    IDs left in the current block
//	abacus_serial_blocks_ahead                   gauge    acknowledged blocks held beyond it
//	abacus_serial_ids_in_hand                    gauge    IDs issuable without Redis
//	abacus_serial_ids_per_second                 gauge    measured issue rate
//	abacus_serial_runway_seconds                 gauge    how long the IDs in hand last at that rate
//	abacus_serial_fetch_seconds                  gauge    longest recent block fetch, decaying
//	abacus_serial_high_water                     gauge    end of the highest block accepted
//
// Leases, from lease.Stats and the lease's state, labelled lease:
//
//	abacus_lease_attempts_total                  counter  acquisition attempts
//	abacus_lease_round_trips_total               counter  Redis round trips for the lease
//	abacus_lease_renewals_total                  counter  successful refreshes
//	abacus_lease_held                            gauge    1 while held, 0 once ended
//	abacus_lease_fence                           gauge    fencing token of the acquisition
//	abacus_lease_deadline_timestamp_seconds      gauge    local deadline, while held
//
// Queues, from queue.Stats (read from Redis at each collection), labelled
// queue:
//
//	abacus_queue_messages{list="ready|processing|dead"}  gauge  messages per list
//	abacus_queue_consumers                       gauge    registered consumers
//	abacus_queue_read_errors_total               counter  collections that could not read the lists
//
// A queue whose lists cannot be read within Options.QueueTimeout is left
// out of that collection, and counted in abacus_queue_read_errors_total,
// rather than failing the whole scrape: an operator wants the engine's
// figures most when Redis is unreachable.
package metrics
