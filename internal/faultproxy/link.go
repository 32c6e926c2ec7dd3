package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// bufSize is the largest chunk a pump moves at once; RESP requests and
// replies of tests fit easily, and bigger ones just take several chunks.
const bufSize = 32 << 10

// link is one proxied connection: a client conn and the server conn dialed
// for it, with one pump goroutine per direction.
type link struct {
	p      *Proxy
	client net.Conn
	server net.Conn

	closeOnce sync.Once
	done      chan struct{} // closed when both conns are closed

	// tainted records that a Blackhole discarded bytes of this link, so
	// its byte streams are no longer coherent; guarded by p.mu.
	tainted bool
	// dropFwd is set when DropNextReply chose this link, and closed once
	// the chosen request has been written to the server; guarded by p.mu.
	dropFwd chan struct{}
}

func newLink(p *Proxy, client, server net.Conn) *link {
	return &link{p: p, client: client, server: server, done: make(chan struct{})}
}

// run pumps both directions and returns when both pumps have ended, with
// both conns closed.
func (l *link) run() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.upstream()
	}()
	l.downstream()
	wg.Wait()
	l.close(false)
}

// close closes both conns, with RSTs when rst is set, unless the link is
// already closed.
func (l *link) close(rst bool) {
	l.closeOnce.Do(func() { l.shut(rst) })
}

// cut resets both sides of the link, as a fault, unless it is already
// closed; then, and only then, it calls counted first. Counting before the
// reset matters: a client that saw its connection reset must find the cut
// in Stats, however late this goroutine runs again.
func (l *link) cut(counted func()) {
	l.closeOnce.Do(func() {
		if counted != nil {
			counted()
		}
		l.shut(true)
	})
}

// shut closes both conns, with RSTs when rst is set; closeOnce runs it.
func (l *link) shut(rst bool) {
	if rst {
		reset(l.client)
		reset(l.server)
	} else {
		l.client.Close()
		l.server.Close()
	}
	close(l.done)
}

// upstream copies client bytes to the server, except during a Blackhole,
// and lets DropNextReply choose this link.
func (l *link) upstream() {
	buf := make([]byte, bufSize)
	for {
		n, err := l.client.Read(buf)
		if n > 0 {
			l.p.mu.Lock()
			forward := !l.p.blackhole
			var fwd chan struct{}
			if !forward {
				l.tainted = true
			} else if l.dropFwd == nil && l.p.dropArmed > 0 {
				l.p.dropArmed--
				fwd = make(chan struct{})
				l.dropFwd = fwd
			}
			l.p.mu.Unlock()
			if forward {
				_, werr := l.server.Write(buf[:n])
				if fwd != nil {
					close(fwd)
				}
				if werr != nil {
					l.close(false)
					return
				}
			}
		}
		if err != nil {
			l.ended(err, l.server)
			return
		}
	}
}

// downstream copies server bytes to the client, except during a Blackhole,
// holding them while a stall lasts, and carries out a DropNextReply that
// chose this link.
func (l *link) downstream() {
	buf := make([]byte, bufSize)
	for {
		n, err := l.server.Read(buf)
		if n > 0 {
			l.p.mu.Lock()
			forward := !l.p.blackhole
			if !forward {
				l.tainted = true
			}
			fwd := l.dropFwd
			until := l.p.stallUntil
			l.p.mu.Unlock()
			if forward && fwd != nil {
				l.drop(fwd)
				return
			}
			if forward && !l.hold(until) {
				return
			}
			if forward {
				if _, werr := l.client.Write(buf[:n]); werr != nil {
					l.close(false)
					return
				}
			}
		}
		if err != nil {
			l.ended(err, l.client)
			return
		}
	}
}

// drop discards the reply just read and cuts the link, once the request
// DropNextReply chose is fully written to the server: Redis has it, the
// client will never see the answer.
func (l *link) drop(forwarded chan struct{}) {
	select {
	case <-forwarded:
	case <-l.done:
		return
	}
	l.p.mu.Lock()
	l.p.stats.DroppedReplies++
	l.p.mu.Unlock()
	l.p.cutLink(l)
}

// hold waits until the stall deadline passes, and reports false if the link
// was closed meanwhile.
func (l *link) hold(until time.Time) bool {
	d := time.Until(until)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}

// ended handles the end of a pump's source: a clean EOF is passed on as a
// half-close to the other side, so a reply already on its way still
// arrives; anything else closes the link.
func (l *link) ended(err error, to net.Conn) {
	if errors.Is(err, io.EOF) {
		if tc, ok := to.(*net.TCPConn); ok {
			if tc.CloseWrite() == nil {
				return
			}
		}
	}
	l.close(false)
}
