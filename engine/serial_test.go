package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/serial"
)

// TestSerialSharesTheEngine: allocators from two engines on one key never
// issue the same ID, one engine returns one allocator per name, and Close
// closes them.
func TestSerialSharesTheEngine(t *testing.T) {
	rdb := redistest.Client(t)
	ns := redistest.Prefix(t)
	ctx := context.Background()
	opts := engine.Options{Namespace: ns, Serial: serial.Options{MinBlock: 10, MaxBlock: 10}}
	a, b := newEngine(t, rdb, opts), newEngine(t, rdb, opts)
	sa, err := a.Serial("orders")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := a.Serial("orders"); again != sa {
		t.Fatal("Serial(orders) twice returned two allocators")
	}
	sb, _ := b.Serial("orders")
	seen := map[int64]bool{}
	for range 1000 {
		for _, s := range []*serial.Allocator{sa, sb} {
			id, err := s.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if seen[id] {
				t.Fatalf("ID %d issued twice", id)
			}
			seen[id] = true
		}
	}
	if _, err := a.Serial(""); !errors.Is(err, engine.ErrInvalidName) {
		t.Errorf("Serial(\"\") = %v; want ErrInvalidName", err)
	}
	closeOrFail(t, a)
	if _, err := sa.Next(ctx); !errors.Is(err, serial.ErrClosed) {
		t.Errorf("Next after engine Close = %v; want serial.ErrClosed", err)
	}
	if _, err := a.Serial("orders"); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Serial after Close = %v; want ErrClosed", err)
	}
}
