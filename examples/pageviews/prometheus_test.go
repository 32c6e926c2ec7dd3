package main

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/promtest"
	"github.com/abacus-go/abacus/internal/redistest"
)

// scrapeWait bounds the wait for a series to reach Prometheus: a hang
// guard, many scrape intervals (1s) on a busy machine.
const scrapeWait = 60 * time.Second

// TestPrometheusScrapesMetrics serves the example against a real Redis,
// has a real prometheus server (Debian's package) scrape its /metrics
// every second, and reads the views it counted back through Prometheus'
// HTTP API.
func TestPrometheusScrapesMetrics(t *testing.T) {
	const views = 250
	rdb := redistest.Client(t)
	e, err := engine.New(rdb, engine.Options{Namespace: redistest.Prefix(t), FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, sigterm := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, e, time.Minute, t.Logf) }()
	defer func() {
		sigterm()
		if err := <-served; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	prom := promtest.Start(t, ln.Addr().String())

	base := "http://" + ln.Addr().String()
	for i := range views {
		if code, _ := fetch(t, fmt.Sprintf("%s/p/%d", base, i%7)); code != 200 {
			t.Fatalf("GET /p/%d = %d", i%7, code)
		}
	}
	for _, q := range []struct {
		expr string
		want float64
	}{
		{`up{job="abacus"}`, 1},
		{`abacus_engine_flushed_delta{job="abacus"}`, views},
		{`abacus_engine_counters{job="abacus"}`, 7}, // /p/0 … /p/6
	} {
		waitForSample(t, prom, q.expr, q.want)
	}
}

// waitForSample queries expr until it returns one sample equal to want,
// failing t after scrapeWait.
func waitForSample(t *testing.T, prom *promtest.Server, expr string, want float64) {
	t.Helper()
	deadline := time.Now().Add(scrapeWait)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := prom.Query(ctx, expr)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case len(got) == 1 && got[0].Value == want:
			return
		default:
			last = fmt.Sprintf("%+v", got)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus query %s: still %s after %v; want one sample of %g", expr, last, scrapeWait, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
