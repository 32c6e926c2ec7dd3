package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/abacus-go/abacus/metrics"
	"github.com/abacus-go/abacus/serial"
)

func Example() {
	rdb := exampleClient() // e.g. redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	ctx := context.Background()
	const key = "example:metrics:orders"
	rdb.Del(ctx, key)
	defer rdb.Del(ctx, key)

	orders, err := serial.New(rdb, key, serial.Options{})
	if err != nil {
		panic(err)
	}
	defer orders.Close(context.Background())
	orders.NextN(ctx, 3)

	reg := prometheus.NewRegistry() // a registry of the program's, not the global one
	if _, err := metrics.Register(reg, metrics.Options{Serials: []*serial.Allocator{orders}}); err != nil {
		panic(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})) // http.Handle("/metrics", …)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		if strings.Contains(sc.Text(), "abacus_serial_issued_ids_total") {
			fmt.Println(sc.Text())
		}
	}
	// Output:
	// # HELP abacus_serial_issued_ids_total IDs handed out by Next and NextN.
	// # TYPE abacus_serial_issued_ids_total counter
	// abacus_serial_issued_ids_total{serial="example:metrics:orders"} 3
}
