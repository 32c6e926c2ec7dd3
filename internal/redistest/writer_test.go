package redistest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// writer sets keys w:0, w:1, … one after another through a client until
// halted, counting the writes acknowledged and failed, so that a failover
// test can check that the client keeps working across failovers.
type writer struct {
	c          redis.Cmdable
	ok, failed atomic.Int64
	last       atomic.Int64 // the last n whose SET was acknowledged; -1 before any
	stop, done chan struct{}
}

func startWriter(t *testing.T, c redis.Cmdable) *writer {
	t.Helper()
	w := &writer{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	w.last.Store(-1)
	go w.run()
	t.Cleanup(func() {
		select {
		case <-w.stop:
		default:
			close(w.stop)
		}
		<-w.done
	})
	return w
}

func (w *writer) run() {
	defer close(w.done)
	for n := int64(0); ; n++ {
		select {
		case <-w.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := w.c.Set(ctx, "w:"+strconv.FormatInt(n, 10), n, 0).Err()
		cancel()
		if err != nil {
			w.failed.Add(1)
			time.Sleep(10 * time.Millisecond) // a failover is under way
			continue
		}
		w.ok.Add(1)
		w.last.Store(n)
	}
}

// progress waits until n more writes have been acknowledged.
func (w *writer) progress(t *testing.T, n int64) {
	t.Helper()
	from := w.ok.Load()
	WaitFor(t, strconv.FormatInt(n, 10)+" acknowledged writes", func() bool { return w.ok.Load() >= from+n })
}

// halt stops the writer and checks that its last acknowledged write is
// readable: writes after the last failover went to the serving master.
func (w *writer) halt(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	t.Logf("writes: %d acknowledged, %d failed", w.ok.Load(), w.failed.Load())
	n := w.last.Load()
	key := "w:" + strconv.FormatInt(n, 10)
	got, err := w.c.Get(context.Background(), key).Int64()
	if err != nil || got != n {
		t.Fatalf("GET %s = %d, %v; want %d", key, got, err, n)
	}
}
