package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/metrics"
)

// views counts page views per path through an abacus engine.
type views struct {
	e       *engine.Engine
	metrics http.Handler // the engine's Stats, and the Go runtime's, for Prometheus
	// handles caches a counter handle per path: the hot path is one
	// lock-free map load and one Inc. It is also the list of paths /counts
	// reports. (Memory grows with distinct paths; count route patterns
	// instead of raw paths where clients can invent paths.)
	handles sync.Map // path → *engine.Counter
}

// otherPath is where the middleware counts requests whose path fails
// checkPath (behind the mux, only paths over maxPathLen bytes do). They
// are counted, not dropped or refused: counting must not change what the
// site serves.
const otherPath = "(other)"

// maxPathLen is the longest path counted under its own name: the counter
// is named "pv:" + path.
const maxPathLen = engine.MaxNameLen - len("pv:")

// checkPath says why path cannot be counted under its own name, or
// returns nil.
func checkPath(path string) error {
	switch {
	case path == "":
		return errors.New("path is empty")
	case path[0] != '/':
		return fmt.Errorf("path %q does not start with '/'", path)
	case len(path) > maxPathLen:
		return fmt.Errorf("path is %d bytes; the longest counted is %d", len(path), maxPathLen)
	}
	return nil
}

// newViews returns the counting site over e, with e's Stats on /metrics.
func newViews(e *engine.Engine) (*views, error) {
	// A registry of the server's own: what /metrics serves is what is
	// registered here, never what other packages put in the global one.
	reg := prometheus.NewRegistry()
	if _, err := metrics.Register(reg, metrics.Options{Engine: e}); err != nil {
		return nil, err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &views{e: e, metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}, nil
}

// counter returns the handle for path, creating it on first use; nil once
// the engine is closed.
func (v *views) counter(path string) *engine.Counter {
	if c, ok := v.handles.Load(path); ok {
		return c.(*engine.Counter)
	}
	c, err := v.e.Counter("pv:" + path)
	if err != nil {
		return nil
	}
	got, _ := v.handles.LoadOrStore(path, c)
	return got.(*engine.Counter)
}

// count is the middleware: one increment per request, in memory; the
// engine writes the totals to Redis every flush interval.
func (v *views) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if checkPath(path) != nil {
			path = otherPath
		}
		if c := v.counter(path); c != nil {
			c.Inc()
		}
		next.ServeHTTP(w, r)
	})
}

// counts serves {"path": views} for every path this server has counted,
// or for the one in ?path=, each the Redis total plus this process's
// unflushed views. Reading a path never creates a counter (Engine.Value
// does not), so a client cannot grow memory through /counts.
func (v *views) counts(w http.ResponseWriter, r *http.Request) {
	path, one, err := pathParam(r.URL.RawQuery)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out := map[string]int64{}
	add := func(path string, c *engine.Counter) error {
		n, err := c.Value(r.Context())
		out[path] = n
		return err
	}
	if one {
		out[path], err = v.e.Value(r.Context(), "pv:"+path)
	} else {
		v.handles.Range(func(k, c any) bool {
			err = add(k.(string), c.(*engine.Counter))
			return err == nil
		})
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// pathParam parses the query of /counts: empty, or path=<URL path> (or
// otherPath). It returns the path and whether one was given, or says what
// is wrong with the query.
func pathParam(rawQuery string) (path string, given bool, err error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", false, fmt.Errorf("bad query: %w", err)
	}
	for k, vs := range q {
		if k != "path" {
			return "", false, fmt.Errorf("unknown parameter %q: /counts takes only path", k)
		}
		if len(vs) > 1 {
			return "", false, fmt.Errorf("path given %d times: give one, or none for every path", len(vs))
		}
	}
	ps, given := q["path"]
	if !given {
		return "", false, nil
	}
	if ps[0] != otherPath {
		if err := checkPath(ps[0]); err != nil {
			return "", false, err
		}
	}
	return ps[0], true, nil
}

// handler is the whole server: the site (counted) and the admin
// endpoints (not counted).
func (v *views) handler() http.Handler {
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "page %s\n", r.URL.Path)
	})
	mux := http.NewServeMux()
	mux.Handle("/", v.count(site))
	mux.HandleFunc("GET /counts", v.counts)
	mux.Handle("GET /metrics", v.metrics)
	return mux
}

// serve runs the server on ln until ctx ends (SIGINT/SIGTERM in main),
// then shuts down gracefully: it stops accepting, lets requests in flight
// finish, and closes the engine, which flushes every counted view to
// Redis. It returns the first error, including an *engine.UnflushedError
// naming what could not be written within grace.
func serve(ctx context.Context, ln net.Listener, e *engine.Engine, grace time.Duration, logf func(string, ...any)) error {
	v, err := newViews(e)
	if err != nil {
		e.Close(ctx)
		return err
	}
	srv := &http.Server{Handler: v.handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logf("serving on http://%s (counts at /counts, metrics at /metrics)", ln.Addr())
	select {
	case <-ctx.Done():
		logf("shutting down: draining requests, then flushing counts to Redis")
	case err = <-served:
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if cerr := e.Close(sctx); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	st := e.Stats()
	logf("flushed: %d views over %d keys in %d flushes", st.DeltaFlushed, st.KeysFlushed, st.Flushes)
	return err
}
