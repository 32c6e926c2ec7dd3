package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestPageViews sends 100,000 requests from the load generator to the
// real server (real sockets, real Redis), shuts it down as SIGTERM would,
// and checks that Redis holds exactly the views sent, per path.
func TestPageViews(t *testing.T) {
	const requests, conns, paths = 100_000, 32, 50
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	e, err := engine.New(rdb, engine.Options{Namespace: ns, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, sigterm := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, e, time.Minute, t.Logf) }()

	res, err := load(context.Background(), base, requests, conns, paths)
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != requests || len(res.Sent) != paths {
		t.Fatalf("load sent %d requests over %d paths; want %d over %d", res.Total, len(res.Sent), requests, paths)
	}
	t.Logf("%d requests in %v", res.Total, res.Elapsed)

	// The read side, while serving: /counts (read-your-writes) and /metrics.
	var counts map[string]int64
	getJSON(t, base+"/counts", &counts)
	for path, n := range res.Sent {
		if counts[path] != n {
			t.Errorf("/counts[%s] = %d; want %d", path, counts[path], n)
		}
	}
	if m := getText(t, base+"/metrics"); !strings.Contains(m, "# TYPE abacus_engine_flushes_total counter") {
		t.Errorf("/metrics is not Prometheus text:\n%s", m)
	}

	sigterm()
	if err := <-served; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for path, n := range res.Sent {
		got, err := rdb.Get(context.Background(), ns+"pv:"+path).Int64()
		if err != nil || got != n {
			t.Errorf("Redis %spv:%s = %d, %v; want %d", ns, path, got, err, n)
		}
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getText(t, url)), v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}
