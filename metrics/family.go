package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// stat is one metric read from a snapshot of type S.
type stat[S any] struct {
	name  string // after "abacus_<subsystem>_"
	kind  prometheus.ValueType
	help  string
	value func(S) float64
}

// counter and gauge make the entries of the stat tables read as a list.
func counter[S any](name, help string, value func(S) float64) stat[S] {
	return stat[S]{name, prometheus.CounterValue, help, value}
}

func gauge[S any](name, help string, value func(S) float64) stat[S] {
	return stat[S]{name, prometheus.GaugeValue, help, value}
}

// family is the metrics of one observed value: a table of stats, their
// descriptors with the value's constant labels, and the function that
// takes the snapshot they are read from, once per collection.
type family[S any] struct {
	stats    []stat[S]
	descs    []*prometheus.Desc // parallel to stats
	snapshot func() S
}

func newFamily[S any](subsystem string, stats []stat[S], labels prometheus.Labels, snapshot func() S) *family[S] {
	f := &family[S]{stats: stats, snapshot: snapshot}
	for _, s := range stats {
		f.descs = append(f.descs, prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, s.name), s.help, nil, labels))
	}
	return f
}

func (f *family[S]) describe(ch chan<- *prometheus.Desc) {
	for _, d := range f.descs {
		ch <- d
	}
}

func (f *family[S]) collect(_ context.Context, ch chan<- prometheus.Metric) {
	s := f.snapshot()
	for i, st := range f.stats {
		ch <- prometheus.MustNewConstMetric(f.descs[i], st.kind, st.value(s))
	}
}
