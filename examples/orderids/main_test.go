package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/serial"
)

// TestOrderIDs runs two "processes" (two allocators, two servers) on one
// key and checks that 4,000 orders taken concurrently over HTTP get
// distinct, well-formed numbers.
func TestOrderIDs(t *testing.T) {
	rdb := redistest.Client(t)
	key := redistest.Prefix(t) + "orders:id"
	day := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var servers []*httptest.Server
	for range 2 {
		ids, err := serial.New(rdb, key, serial.Options{MinBlock: 100, MaxBlock: 100})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ids.Close(context.Background()) })
		n := &numbers{ids: ids, prefix: "ORD-", width: 6, now: func() time.Time { return day }}
		s := httptest.NewServer(n.handler())
		t.Cleanup(s.Close)
		servers = append(servers, s)
	}
	form := regexp.MustCompile(`^ORD-20261125-\d{6,}$`)
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				resp, err := http.Post(servers[g%2].URL+"/orders", "", nil)
				if err != nil {
					t.Error(err)
					return
				}
				var got struct{ Order string }
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if err != nil || !form.MatchString(got.Order) {
					t.Errorf("POST /orders = %q, %v; want ORD-20261125-NNNNNN", got.Order, err)
					return
				}
				mu.Lock()
				if seen[got.Order] {
					t.Errorf("order number %s handed out twice", got.Order)
				}
				seen[got.Order] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 4000 {
		t.Fatalf("%d distinct order numbers; want 4000", len(seen))
	}
}

func TestNext(t *testing.T) {
	rdb := redistest.Client(t)
	ids, err := serial.New(rdb, redistest.Prefix(t)+"orders:id", serial.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ids.Close(context.Background())
	n := &numbers{ids: ids, prefix: "ORD-", width: 6,
		now: func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) }}
	first, err := n.next(context.Background())
	if err != nil || first != "ORD-20261125-000001" {
		t.Fatalf("first number = %q, %v; want ORD-20261125-000001", first, err)
	}
}
