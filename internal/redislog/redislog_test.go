package redislog

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redisproc"
)

// logLines returns a logger writing to a buffer, and a function returning
// its lines so far.
func logLines() (*slog.Logger, func() []string) {
	var b bytes.Buffer
	l := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	return l, func() []string { return strings.Split(strings.TrimSpace(b.String()), "\n") }
}

func TestSummaryHoldsBackRepeats(t *testing.T) {
	l, lines := logLines()
	s := NewSummary(l, 10*time.Second)
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	dial := "redis: connection pool: failed to dial after %d attempts: %v"
	for i := range 4 {
		s.Printf(ctx, dial, 5, "refused")
		now = now.Add(time.Second * time.Duration(i))
	}
	s.Printf(ctx, "redis: connection pool: failed to get a usable connection after %d attempts", 3)
	now = now.Add(10 * time.Second)
	s.Printf(ctx, dial, 5, "refused again")
	want := []string{
		`level=WARN msg="go-redis: connection pool: failed to dial after 5 attempts: refused"`,
		`level=WARN msg="go-redis: connection pool: failed to get a usable connection after 3 attempts"`,
		`level=WARN msg="go-redis: connection pool: failed to dial after 5 attempts: refused again" held_back=3`,
	}
	got := lines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSetSummaryCatchesDialErrors: with Set(Summary, …), a client that
// cannot dial logs through the given logger, not to stderr.
func TestSetSummaryCatchesDialErrors(t *testing.T) {
	l, lines := logLines()
	if err := Set(Summary, l); err != nil {
		t.Fatal(err)
	}
	defer Set(Stderr, nil)
	port, err := redisproc.FreePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprint("127.0.0.1:", port), DialerRetries: 1, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Fatal("Ping of a closed port succeeded")
	}
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], "go-redis: connection pool: failed to dial") {
		t.Errorf("logged %q; want one go-redis dial failure", got)
	}
}

func TestSetRejectsUnknownMode(t *testing.T) {
	if err := Set("quiet", nil); err == nil || !strings.Contains(err.Error(), Modes) {
		t.Errorf("Set(quiet) = %v; want an error naming %s", err, Modes)
	}
}
