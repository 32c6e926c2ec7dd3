package engine_test

import (
	"testing"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// TestHotPathsDoNotAllocate guards Counter.Add and Engine.Add on an
// existing name.
func TestHotPathsDoNotAllocate(t *testing.T) {
	rdb := redistest.Client(t)
	e := newEngine(t, rdb, engine.Options{Namespace: redistest.Prefix(t)})
	c, _ := e.Counter("k")
	if n := testing.AllocsPerRun(1000, func() { c.Add(1) }); n != 0 {
		t.Errorf("Counter.Add allocates %.1f times per call; want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { e.Add("k", 1) }); n != 0 {
		t.Errorf("Engine.Add allocates %.1f times per call; want 0", n)
	}
}
