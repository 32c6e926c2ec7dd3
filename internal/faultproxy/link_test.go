package faultproxy

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestLinkPassesHalfCloseAndStillDeliversReply(t *testing.T) {
	p, _ := setup(t)
	c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(eventuallyWithin))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	// The client is done sending; the proxy must pass that on as a
	// half-close, not drop the reply already on its way back.
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "+PONG\r\n" {
		t.Fatalf("read after PING and half-close = %q, %v; want \"+PONG\\r\\n\", then EOF", got, err)
	}
}
