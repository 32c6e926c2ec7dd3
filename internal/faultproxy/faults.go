package faultproxy

import "time"

// CutAll resets every open connection now, on both sides: clients and the
// server see "connection reset", and a command in flight, blocking ones
// included, fails. Connections accepted before the call but still dialing
// the target are cut as soon as they are set up.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	p.stats.CutAlls++
	p.cutGen++
	links := p.snapshotLocked()
	p.mu.Unlock()
	for _, l := range links {
		p.cutLink(l)
	}
}

// cutLink resets l and counts it, unless it was already closed. p.mu must
// not be held.
func (p *Proxy) cutLink(l *link) {
	l.cut(func() {
		p.mu.Lock()
		p.stats.Cut++
		p.mu.Unlock()
	})
}

// Blackhole turns a silent network partition on or off. While on, the proxy
// still accepts connections and reads what clients send, but forwards
// nothing in either direction, on existing and new connections alike:
// requests never reach the server and clients wait for replies until their
// own timeouts. Turning it off resets the connections whose bytes it
// discarded (their streams can no longer be parsed), so that every
// connection left open, and every new one, works normally.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	if on && !p.blackhole {
		p.stats.Blackholes++
	}
	p.blackhole = on
	var tainted []*link
	if !on {
		for l := range p.links {
			if l.tainted {
				tainted = append(tainted, l)
			}
		}
	}
	p.mu.Unlock()
	for _, l := range tainted {
		p.cutLink(l)
	}
}

// Refuse turns refusal on or off. While on, new connections are reset
// immediately after they are accepted, so a client's dial or its first
// command fails; open connections are not affected.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	if on && !p.refuse {
		p.stats.Refuses++
	}
	p.refuse = on
	p.mu.Unlock()
}

// DropNextReply arms a lost-reply fault. The next connection to send a
// request forwards it to the server; the server's reply bytes that follow
// are discarded and that connection is reset on both sides. The request was
// applied, and the client cannot know it. Each call arms one fault.
//
// Connection set-up (go-redis sends HELLO on a new connection) is a request
// like any other: tests that want the fault on a given command should make
// sure the client's connection is already established, e.g. with a PING.
// With pipelining, requests written after the first reply arrived may or
// may not be applied, as on a real network.
func (p *Proxy) DropNextReply() {
	p.mu.Lock()
	p.stats.DropsArmed++
	p.dropArmed++
	p.mu.Unlock()
}

// StallReplies holds every server→client byte that arrives during the next
// d until d has passed, on all connections, then forwards it. Requests still
// reach the server, so a client whose read timeout is shorter than d times
// out on a command that was applied. A later call replaces the deadline;
// d <= 0 lets bytes that arrive from now on through at once.
func (p *Proxy) StallReplies(d time.Duration) {
	p.mu.Lock()
	if d > 0 {
		p.stats.Stalls++
		p.stallUntil = time.Now().Add(d)
	} else {
		p.stallUntil = time.Time{}
	}
	p.mu.Unlock()
}
