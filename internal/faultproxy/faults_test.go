package faultproxy

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
)

func TestDropNextReplyAppliesButLosesReply(t *testing.T) {
	p, direct := setup(t)
	ctx := context.Background()
	// A read timeout only a hung proxy reaches: the INCR must fail because
	// its connection was reset, never because a busy machine was slow.
	c := connected(t, p, eventuallyWithin)

	p.DropNextReply()
	if n, err := c.Incr(ctx, "n").Result(); err == nil || isTimeout(err) {
		t.Fatalf("INCR n after DropNextReply = %d, %v; want the connection reset", n, err)
	}
	if got, err := direct.Get(ctx, "n").Int(); err != nil || got != 1 {
		t.Fatalf("GET n direct = %d, %v; want 1 (the INCR was applied)", got, err)
	}
	if n, err := c.Incr(ctx, "n").Result(); err != nil || n != 2 {
		t.Fatalf("second INCR n = %d, %v; want 2, nil (one drop per call)", n, err)
	}
	if st := p.Stats(); st.DropsArmed != 1 || st.DroppedReplies != 1 || st.Cut != 1 {
		t.Fatalf("Stats() = %+v; want DropsArmed 1, DroppedReplies 1, Cut 1", st)
	}
}

func TestStallRepliesTimesOutAppliedCommand(t *testing.T) {
	p, direct := setup(t)
	ctx := context.Background()
	c := connected(t, p, 100*time.Millisecond)

	p.StallReplies(5 * time.Second) // far past the 100ms read timeout
	if n, err := c.Incr(ctx, "n").Result(); !isTimeout(err) {
		t.Fatalf("INCR n during stall = %d, %v; want a timeout", n, err)
	}
	redistest.WaitFor(t, "GET n direct = 1 (the stalled INCR was applied)", func() bool {
		got, err := direct.Get(ctx, "n").Int()
		return err == nil && got == 1
	})
	p.StallReplies(0)
	if n, err := c.Incr(ctx, "n").Result(); err != nil || n != 2 {
		t.Fatalf("INCR n after StallReplies(0) = %d, %v; want 2, nil", n, err)
	}
	if st := p.Stats(); st.Stalls != 1 {
		t.Fatalf("Stats().Stalls = %d; want 1", st.Stalls)
	}
}

func TestBlackholeSilencesThenHeals(t *testing.T) {
	p, direct := setup(t)
	ctx := context.Background()
	busy := connected(t, p, 200*time.Millisecond)
	idle := connected(t, p, 200*time.Millisecond) // sends nothing during the partition

	p.Blackhole(true)
	if err := busy.Set(ctx, "k", "v", 0).Err(); !isTimeout(err) {
		t.Fatalf("SET k during blackhole = %v; want a timeout", err)
	}
	if err := dial(t, p, 200*time.Millisecond).Ping(ctx).Err(); err == nil {
		t.Fatal("PING on a new connection during blackhole succeeded")
	}
	p.Blackhole(false)

	if err := direct.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("GET k direct = %v; want redis.Nil (the blackhole delivered nothing)", err)
	}
	for _, tc := range []struct {
		name string
		c    *redis.Client
	}{
		{"busy client", busy},
		{"idle client", idle},
		{"new client", dial(t, p, 200*time.Millisecond)},
	} {
		if err := tc.c.Ping(ctx).Err(); err != nil {
			t.Errorf("PING from %s after Blackhole(false): %v", tc.name, err)
		}
	}
	if st := p.Stats(); st.Blackholes != 1 {
		t.Fatalf("Stats().Blackholes = %d; want 1", st.Blackholes)
	}
}

func TestRefuseResetsNewConnections(t *testing.T) {
	p, _ := setup(t)
	ctx := context.Background()
	open := connected(t, p, time.Second)

	p.Refuse(true)
	if err := dial(t, p, time.Second).Ping(ctx).Err(); err == nil {
		t.Fatal("PING on a new client during Refuse succeeded")
	}
	raw, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err == nil {
		raw.SetDeadline(time.Now().Add(eventuallyWithin))
		_, err = raw.Read(make([]byte, 1))
		raw.Close()
	}
	if err == nil || isTimeout(err) {
		t.Fatalf("raw dial and read during Refuse: %v; want the connection refused or reset", err)
	}
	if err := open.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING on a connection opened before Refuse: %v", err)
	}
	p.Refuse(false)
	if err := dial(t, p, time.Second).Ping(ctx).Err(); err != nil {
		t.Fatalf("PING on a new client after Refuse(false): %v", err)
	}
	if st := p.Stats(); st.Refuses != 1 || st.Refused < 2 {
		t.Fatalf("Stats() = %+v; want Refuses 1, Refused >= 2", st)
	}
}

func TestCutAllBreaksBlockingCommand(t *testing.T) {
	p, direct := setup(t)
	ctx := context.Background()
	c := connected(t, p, time.Second)

	errc := make(chan error, 1)
	go func() { errc <- c.BLPop(ctx, 0, "q").Err() }() // blocks forever unless cut
	redistest.WaitFor(t, "BLPOP blocked on the server", func() bool { return blockedClients(t, direct) == "1" })

	p.CutAll()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("BLPOP after CutAll returned no error")
		}
	case <-time.After(eventuallyWithin):
		t.Fatalf("BLPOP still blocked %v after CutAll", eventuallyWithin)
	}
	// The server side was reset too: nobody is left waiting to pop q.
	redistest.WaitFor(t, "server dropped the blocked client", func() bool { return blockedClients(t, direct) == "0" })
	if err := direct.LPush(ctx, "q", "m").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := direct.LLen(ctx, "q").Result(); err != nil || n != 1 {
		t.Fatalf("LLEN q after LPUSH = %d, %v; want 1 (no stale BLPOP took it)", n, err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after CutAll (new connection): %v", err)
	}
	if st := p.Stats(); st.CutAlls != 1 || st.Cut != 1 {
		t.Fatalf("Stats() = %+v; want CutAlls 1, Cut 1", st)
	}
}

// blockedClients returns the server's blocked_clients from INFO clients.
func blockedClients(t *testing.T, direct *redis.Client) string {
	t.Helper()
	info, err := direct.Info(context.Background(), "clients").Result()
	if err != nil {
		t.Fatalf("INFO clients: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "blocked_clients:"); ok {
			return v
		}
	}
	t.Fatalf("INFO clients has no blocked_clients:\n%s", info)
	return ""
}
