package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-go/abacus/engine"
)

// inprocessCmd drives the counting handler directly from goroutines, with
// no sockets, to show what the counting middleware costs inside a web
// tier; the HTTP stack, not abacus, limits the socket figures.
func inprocessCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("inprocess", flag.ExitOnError)
	url := fs.String("redis", "", "Redis URL (default $REDIS_URL, else redis://localhost:6379)")
	d := fs.Duration("d", 3*time.Second, "how long to run")
	c := fs.Int("c", 64, "goroutines")
	paths := fs.Int("paths", 100, "distinct paths")
	fs.Parse(args)
	rdb, err := redisClient(*url)
	if err != nil {
		return err
	}
	defer rdb.Close()
	e, err := engine.New(rdb, engine.Options{})
	if err != nil {
		return err
	}
	v, err := newViews(e)
	if err != nil {
		e.Close(ctx)
		return err
	}
	h := v.handler()
	reqs := make([]*http.Request, *paths)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/p/"+strconv.Itoa(i), nil)
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(*d)
	start := time.Now()
	for g := range *c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &discard{h: http.Header{}}
			n := int64(0)
			for i := g; time.Now().Before(stop) && ctx.Err() == nil; i++ {
				h.ServeHTTP(w, reqs[i%len(reqs)])
				n++
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if err := e.Close(context.Background()); err != nil {
		return err
	}
	st := e.Stats()
	log.Printf("%d requests counted in %v: %.0f requests/s through the handler; Redis got %d views in %d commands",
		total.Load(), el.Round(time.Millisecond), float64(total.Load())/el.Seconds(), st.DeltaFlushed, st.Commands)
	return nil
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
