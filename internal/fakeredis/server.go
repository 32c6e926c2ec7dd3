package fakeredis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a running fake Redis. Create it with Start and stop it with
// Close. It is safe for concurrent use.
type Server struct {
	ln  net.Listener
	now func() time.Time

	mu    sync.Mutex
	data  map[string]*entry    // guarded by mu
	calls map[string]*cmdStats // guarded by mu; per lower-case command name

	netIn    atomic.Int64 // request bytes read, as total_net_input_bytes
	netOut   atomic.Int64 // reply bytes written, as total_net_output_bytes
	commands atomic.Int64 // commands processed, as total_commands_processed
	started  time.Time

	connMu sync.Mutex
	conns  map[net.Conn]struct{} // guarded by connMu
	closed bool                  // guarded by connMu
	wg     sync.WaitGroup
}

type cmdStats struct {
	calls, usec int64
}

// entry is one key: a string or a list, with an optional expiry.
type entry struct {
	str    []byte
	list   [][]byte
	isList bool
	expire time.Time // zero: no expiry
}

// Start listens on addr ("" means a free loopback port) and serves until
// Close.
func Start(addr string) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakeredis: listen %s: %w", addr, err)
	}
	s := &Server{
		ln:      ln,
		now:     time.Now,
		data:    make(map[string]*entry),
		calls:   make(map[string]*cmdStats),
		conns:   make(map[net.Conn]struct{}),
		started: time.Now(),
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening, closes every connection and waits for their
// goroutines to end.
func (s *Server) Close() error {
	s.connMu.Lock()
	if s.closed {
		s.connMu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.connMu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.connMu.Lock()
		if s.closed {
			s.connMu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.connMu.Unlock()
		go s.serve(c)
	}
}

// countingReader counts request bytes for INFO's total_net_input_bytes.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.connMu.Lock()
		delete(s.conns, c)
		s.connMu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(countingReader{c, &s.netIn}, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	for {
		args, err := readCommand(r)
		if err != nil {
			var pe protocolError
			if errors.As(err, &pe) {
				w.WriteString("-ERR Protocol error: " + string(pe) + "\r\n")
				w.Flush()
			}
			return
		}
		if len(args) == 0 {
			continue
		}
		quit := strings.EqualFold(string(args[0]), "quit")
		out := s.exec(args)
		s.netOut.Add(int64(len(out)))
		w.Write(out)
		// Pipelined requests are answered together: flush only when no
		// further request is already buffered.
		if r.Buffered() == 0 || quit {
			if w.Flush() != nil || quit {
				return
			}
		}
	}
}

type protocolError string

func (e protocolError) Error() string { return string(e) }

// readCommand reads one RESP array of bulk strings, or one inline command
// (as typed into redis-cli or telnet).
func readCommand(r *bufio.Reader) ([][]byte, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, nil
	}
	if line[0] != '*' {
		var args [][]byte
		for _, f := range strings.Fields(string(line)) {
			args = append(args, []byte(f))
		}
		return args, nil
	}
	n, err := strconv.Atoi(string(line[1:]))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, protocolError("invalid multibulk length")
	}
	args := make([][]byte, n)
	for i := range args {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		if len(line) == 0 || line[0] != '$' {
			return nil, protocolError("expected '$'")
		}
		size, err := strconv.Atoi(string(line[1:]))
		if err != nil || size < 0 || size > 512<<20 {
			return nil, protocolError("invalid bulk length")
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = buf[:size]
	}
	return args, nil
}

func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}
