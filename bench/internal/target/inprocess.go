package target

import (
	"fmt"
	"net"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"
)

// miniredisModule is the module of the in-process server, whose version
// the banner and INFO server report.
const miniredisModule = "github.com/alicebob/miniredis/v2"

// startInProcess runs miniredis, a Redis written in Go that runs Lua
// scripts, in this process on a free loopback port. Key TTLs follow the
// wall clock, as Redis' do (by default miniredis only expires keys when
// told to). INFO is answered here from accounting kept here, because
// miniredis' own has none of the sections bench reads: "server"
// (redis_version), "replication" (no replica, which is true), "stats"
// (total_net_input_bytes, counted on the connections) and "commandstats"
// (calls per command, those run by scripts included, as Redis counts).
func startInProcess() (*Target, error) {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("start miniredis: %w", err)
	}
	m.ClockTTL(true)
	// Clients reach the server through a listener of our own, which counts
	// the bytes each connection sends; miniredis' listener goes unused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		m.Close()
		return nil, err
	}
	acct := &accounting{version: miniredisVersion(), calls: map[string]int64{}}
	srv := m.Server()
	srv.SetPreHook(func(p *server.Peer, cmd string, args ...string) bool {
		if cmd == "INFO" {
			acct.count("info")
			p.WriteBulk(acct.info(args))
			return true
		}
		if srv.IsRegisteredCommand(cmd) {
			acct.count(strings.ToLower(cmd))
		}
		return false
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Target.Close
			}
			srv.ServeConn(&countingConn{Conn: c, in: &acct.netInput})
		}
	}()
	addr := ln.Addr().String()
	stop := func() {
		ln.Close()
		m.Close() // closes the connections served too
	}
	return &Target{Kind: InProcess, Addr: addr, opts: &redis.Options{Addr: addr}, close: stop}, nil
}

// miniredisVersion returns "miniredis <module version>" from the build
// information, or plain "miniredis" where a binary carries none.
func miniredisVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == miniredisModule {
				return "miniredis-" + d.Version
			}
		}
	}
	return "miniredis"
}

// accounting is the in-process server's INFO. It is safe for concurrent
// use.
type accounting struct {
	version  string
	netInput atomic.Int64

	mu    sync.Mutex
	calls map[string]int64 // guarded by mu
}

func (a *accounting) count(cmd string) {
	a.mu.Lock()
	a.calls[cmd]++
	a.mu.Unlock()
}

// info renders the INFO sections asked for (all of them for none, "all",
// "default" or "everything"), as Redis lays them out.
func (a *accounting) info(sections []string) string {
	want := map[string]bool{}
	for _, s := range sections {
		switch s = strings.ToLower(s); s {
		case "all", "default", "everything":
			sections = nil
		default:
			want[s] = true
		}
	}
	show := func(s string) bool { return sections == nil || want[s] }
	var b strings.Builder
	if show("server") {
		fmt.Fprintf(&b, "# Server\r\nredis_version:%s\r\nredis_mode:standalone\r\n\r\n", a.version)
	}
	if show("replication") {
		b.WriteString("# Replication\r\nrole:master\r\nconnected_slaves:0\r\nrepl_backlog_active:0\r\n\r\n")
	}
	if show("stats") {
		fmt.Fprintf(&b, "# Stats\r\ntotal_net_input_bytes:%d\r\n\r\n", a.netInput.Load())
	}
	if show("commandstats") {
		a.mu.Lock()
		names := make([]string, 0, len(a.calls))
		for name := range a.calls {
			names = append(names, name)
		}
		sort.Strings(names)
		b.WriteString("# Commandstats\r\n")
		for _, name := range names {
			fmt.Fprintf(&b, "cmdstat_%s:calls=%d\r\n", name, a.calls[name])
		}
		a.mu.Unlock()
	}
	return b.String()
}

// countingConn adds the bytes read from a client to in.
type countingConn struct {
	net.Conn
	in *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}
