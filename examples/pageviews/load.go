package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what a load run sent: successful requests per path.
type loadResult struct {
	Sent    map[string]int64
	Total   int64
	Elapsed time.Duration
}

// load sends n GET requests to base from c goroutines over keep-alive
// connections, spread round-robin over paths /p/0 … /p/<paths-1>. Any
// failed request or non-200 status is an error.
func load(ctx context.Context, base string, n, c, paths int) (*loadResult, error) {
	tr := &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var (
		next  atomic.Int64
		mu    sync.Mutex
		sent  = make(map[string]int64, paths)
		first error
		once  sync.Once
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make(map[string]int64, paths)
			defer func() {
				mu.Lock()
				for p, k := range mine {
					sent[p] += k
				}
				mu.Unlock()
			}()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				path := "/p/" + strconv.FormatInt(i%int64(paths), 10)
				if err := get(ctx, client, base+path); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // stop everyone
					return
				}
				mine[path]++
			}
		}()
	}
	wg.Wait()
	res := &loadResult{Sent: sent, Elapsed: time.Since(start)}
	for _, k := range sent {
		res.Total += k
	}
	return res, first
}

func get(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body) // drain, so the connection is reused
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
