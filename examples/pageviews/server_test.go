package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/internal/redistest"
)

// newServer serves the pageviews handler over an engine on a test Redis.
func newServer(t *testing.T) (*httptest.Server, *engine.Engine) {
	t.Helper()
	e, err := engine.New(redistest.Client(t), engine.Options{Namespace: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	v, err := newViews(e)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(v.handler())
	t.Cleanup(srv.Close)
	return srv, e
}

// fetch GETs url and returns the status and body; a failed request (an
// empty reply from a panicking handler) fails t and returns status 0.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestCountsRejectsBadQuery(t *testing.T) {
	srv, e := newServer(t)
	fetch(t, srv.URL+"/p/1") // so that listing every path has something to list
	long := "/" + strings.Repeat("x", engine.MaxNameLen)
	for _, tc := range []struct {
		name, query, reason string
	}{
		{"empty path", "path=", "path is empty"},
		{"long path", "path=" + long, "the longest counted is"},
		{"relative path", "path=p/1", "does not start with '/'"},
		{"repeated path", "path=/p/1&path=/p/2", "path given 2 times"},
		{"unknown parameter", "pth=/p/1", `unknown parameter "pth"`},
		{"bad escape", "path=%zz", "bad query"},
		{"semicolon", "path=/p/1;x=1", "bad query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.Stats().Counters
			resp, err := http.Get(srv.URL + "/counts?" + tc.query)
			if err != nil {
				t.Fatalf("GET /counts?%.40s: %v", tc.query, errors.Unwrap(err)) // not the whole URL
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.reason) {
				t.Errorf("GET /counts?%.40s = %d %q; want %d naming %q", tc.query, resp.StatusCode, b, http.StatusBadRequest, tc.reason)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q; want text/plain", ct)
			}
			if after := e.Stats().Counters; after != before {
				t.Errorf("Stats().Counters = %d after the request; want %d", after, before)
			}
		})
	}
}

func TestCountsDoesNotCreateCounters(t *testing.T) {
	srv, e := newServer(t)
	before := e.Stats().Counters
	for _, path := range []string{"/never/seen", "/p/1", "/p/2"} {
		want := fmt.Sprintf("{%q:0}\n", path)
		if code, body := fetch(t, srv.URL+"/counts?path="+path); code != http.StatusOK || body != want {
			t.Errorf("GET /counts?path=%s = %d %q; want 200 %q", path, code, body, want)
		}
	}
	if after := e.Stats().Counters; after != before {
		t.Errorf("Stats().Counters = %d after reading unseen paths; want %d", after, before)
	}
	if _, body := fetch(t, srv.URL+"/counts"); body != "{}\n" {
		t.Errorf("GET /counts = %q after reading unseen paths; want {}", body)
	}
}

func TestCountsOfCountedPath(t *testing.T) {
	srv, _ := newServer(t)
	fetch(t, srv.URL+"/p/1")
	fetch(t, srv.URL+"/p/1")
	fetch(t, srv.URL+"/p/2")
	for _, tc := range []struct{ query, want string }{
		{"?path=/p/1", `{"/p/1":2}`},
		{"", `{"/p/1":2,"/p/2":1}`},
	} {
		code, body := fetch(t, srv.URL+"/counts"+tc.query)
		if code != http.StatusOK || body != tc.want+"\n" {
			t.Errorf("GET /counts%s = %d %q; want 200 %s", tc.query, code, body, tc.want)
		}
	}
}

// TestLongPathCountedAsOther: a path too long to be a counter name is
// served as usual and counted under otherPath, not dropped.
func TestLongPathCountedAsOther(t *testing.T) {
	srv, _ := newServer(t)
	long := "/" + strings.Repeat("x", engine.MaxNameLen)
	for range 2 {
		if code, body := fetch(t, srv.URL+long); code != http.StatusOK {
			t.Errorf("GET <%d-byte path> = %d %q; want 200", len(long), code, body)
		}
	}
	want := `{"` + otherPath + `":2}` + "\n"
	for _, q := range []string{"", "?path=" + otherPath} {
		if code, body := fetch(t, srv.URL+"/counts"+q); code != http.StatusOK || body != want {
			t.Errorf("GET /counts%s = %d %q; want 200 %q", q, code, body, want)
		}
	}
}
