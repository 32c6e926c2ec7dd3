package metrics

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-go/abacus/queue"
)

// queueStats exports a queue's lengths, read from Redis at each
// collection.
type queueStats struct {
	q          *queue.Queue
	messages   *prometheus.Desc
	consumers  *prometheus.Desc
	readErrors *prometheus.Desc
	failed     atomic.Uint64 // collections whose read failed
}

func newQueueStats(q *queue.Queue) part {
	labels := prometheus.Labels{"queue": q.Name()}
	name := func(n string) string { return prometheus.BuildFQName(namespace, "queue", n) }
	return &queueStats{
		q: q,
		messages: prometheus.NewDesc(name("messages"),
			"Messages in the queue's lists: ready (waiting), processing (held by consumers and Drain), dead (dead-lettered).",
			[]string{"list"}, labels),
		consumers:  prometheus.NewDesc(name("consumers"), "Registered consumers, dead ones not yet retired included.", nil, labels),
		readErrors: prometheus.NewDesc(name("read_errors_total"), "Collections that could not read the queue's lists from Redis.", nil, labels),
	}
}

func (s *queueStats) describe(ch chan<- *prometheus.Desc) {
	ch <- s.messages
	ch <- s.consumers
	ch <- s.readErrors
}

func (s *queueStats) collect(ctx context.Context, ch chan<- prometheus.Metric) {
	st, err := s.q.Stats(ctx)
	if err != nil {
		s.failed.Add(1)
	} else {
		for _, l := range []struct {
			list string
			n    int64
		}{{"ready", st.Ready}, {"processing", st.Processing}, {"dead", st.Dead}} {
			ch <- prometheus.MustNewConstMetric(s.messages, prometheus.GaugeValue, float64(l.n), l.list)
		}
		ch <- prometheus.MustNewConstMetric(s.consumers, prometheus.GaugeValue, float64(st.Consumers))
	}
	ch <- prometheus.MustNewConstMetric(s.readErrors, prometheus.CounterValue, float64(s.failed.Load()))
}
