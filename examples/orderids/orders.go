package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/abacus-go/abacus/serial"
)

// numbers hands out order numbers such as ORD-20261125-000123: a unique ID
// from a serial.Allocator (one INCRBY per block of IDs, shared by every
// process using the key) decorated with the prefix and the UTC date.
type numbers struct {
	ids    *serial.Allocator
	prefix string
	width  int
	now    func() time.Time
}

// next returns one order number.
func (n *numbers) next(ctx context.Context) (string, error) {
	id, err := n.ids.Next(ctx)
	if err != nil {
		return "", err
	}
	return serial.Format(id, serial.Layout{Prefix: n.prefix, Date: n.now().UTC(), Width: n.width}), nil
}

// create serves POST /orders with {"order": "ORD-…", "id": 123}.
func (n *numbers) create(w http.ResponseWriter, r *http.Request) {
	id, err := n.ids.Next(r.Context())
	if err != nil {
		// Never guess a number: a regression or an unreachable Redis
		// means no order number, not a possible duplicate.
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Order string `json:"order"`
		ID    int64  `json:"id"`
	}{serial.Format(id, serial.Layout{Prefix: n.prefix, Date: n.now().UTC(), Width: n.width}), id})
}

// stats serves the allocator's Stats as JSON.
func (n *numbers) stats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(n.ids.Stats())
}

func (n *numbers) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", n.create)
	mux.HandleFunc("GET /stats", n.stats)
	return mux
}
