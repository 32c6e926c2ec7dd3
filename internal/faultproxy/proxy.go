package faultproxy

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// dialTimeout bounds the proxy's connection to its target for each accepted
// client connection.
const dialTimeout = 5 * time.Second

// Proxy forwards TCP connections from Addr to a target and injects faults
// into them on demand. Create one with New; the zero value is not usable.
// Its methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	done   chan struct{} // closed when the proxy shuts down
	wg     sync.WaitGroup

	mu         sync.Mutex
	links      map[*link]struct{} // open connection pairs; guarded by mu
	closed     bool               // guarded by mu
	blackhole  bool               // guarded by mu
	refuse     bool               // guarded by mu
	dropArmed  int                // pending DropNextReply calls; guarded by mu
	cutGen     int                // CutAll calls so far; guarded by mu
	stallUntil time.Time          // guarded by mu
	stats      Stats              // guarded by mu
}

// Stats counts what a Proxy has seen and done since New.
type Stats struct {
	// Accepted counts client connections accepted, refused ones included.
	Accepted int
	// Refused counts connections closed at accept because Refuse was on.
	Refused int
	// DialErrors counts accepted connections closed because the target
	// could not be reached.
	DialErrors int
	// CutAlls counts calls to CutAll.
	CutAlls int
	// Cut counts connections reset by a fault: CutAll, DropNextReply, or
	// the end of a Blackhole that had discarded their bytes.
	Cut int
	// DropsArmed counts calls to DropNextReply.
	DropsArmed int
	// DroppedReplies counts DropNextReply faults that took effect: a
	// request was forwarded and the reply that followed was discarded.
	DroppedReplies int
	// Stalls counts calls to StallReplies with a positive duration.
	Stalls int
	// Blackholes counts times Blackhole was turned on.
	Blackholes int
	// Refuses counts times Refuse was turned on.
	Refuses int
}

// New starts a proxy listening on a free loopback port that forwards every
// connection to target. It is closed, and all its connections reset, when
// the test ends.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: listen: %v", err)
	}
	p := &Proxy{
		target: target,
		ln:     ln,
		done:   make(chan struct{}),
		links:  make(map[*link]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the host:port clients should dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient accept errors (EMFILE and the like) must not end
			// the proxy while the test is still running.
			select {
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.mu.Lock()
		p.stats.Accepted++
		gen := p.cutGen
		refuse := p.refuse
		if refuse {
			p.stats.Refused++
		}
		p.mu.Unlock()
		if refuse {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.serve(c, gen)
	}
}

// serve dials the target for client and pumps bytes both ways until either
// side closes or a fault cuts the pair. gen is p.cutGen when client was
// accepted: a CutAll during the dial cuts the pair at once.
func (p *Proxy) serve(client net.Conn, gen int) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		p.mu.Lock()
		p.stats.DialErrors++
		p.mu.Unlock()
		reset(client)
		return
	}
	l := newLink(p, client, server)
	p.mu.Lock()
	if p.closed || p.cutGen != gen {
		if !p.closed {
			p.stats.Cut++
		}
		p.mu.Unlock()
		l.cut(nil)
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()

	l.run()

	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// close stops accepting, resets every connection and waits for all
// goroutines of the proxy to end.
func (p *Proxy) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	links := p.snapshotLocked()
	p.mu.Unlock()
	close(p.done)
	p.ln.Close()
	for _, l := range links {
		l.cut(nil)
	}
	p.wg.Wait()
}

// snapshotLocked returns the open links; p.mu must be held.
func (p *Proxy) snapshotLocked() []*link {
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	return links
}

// reset closes c with an RST rather than a FIN, so the peer sees
// "connection reset" as it would when a middlebox or host drops the flow.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
