// Package redisproc runs redis-server (or redis-sentinel) as a child
// process on a free loopback port: the one mechanism behind the test harness
// (internal/redistest) and the benchmark's embedded Redis. On Linux the
// kernel kills the server if its parent dies, so none outlives a killed
// test binary or benchmark.
package redisproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configure a Server.
type Options struct {
	// Dir holds the server's data and log. Required: Restart reuses it.
	Dir string
	// AppendOnly turns on appendonly with fsync always, so that a Restart
	// keeps every acknowledged write. Default: no persistence at all.
	AppendOnly bool
	// Args are extra redis-server arguments.
	Args []string
	// Config is a configuration file read before the arguments. Default:
	// none.
	Config string
	// Sentinel runs redis-sentinel instead of redis-server. It requires
	// Config, which Sentinel rewrites as it learns the topology; AppendOnly
	// does not apply.
	Sentinel bool
}

// Server is a running redis-server. It is not safe for concurrent use.
type Server struct {
	Addr string // 127.0.0.1:port
	Port int

	opts   Options
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Start starts redis-server from PATH on a free loopback port (trying a
// few ports, since a free port can be taken before the server binds it)
// and waits until it answers PING.
func Start(opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("redisproc: Options.Dir is required")
	}
	if opts.Sentinel && opts.Config == "" {
		return nil, errors.New("redisproc: Options.Sentinel requires Config")
	}
	if _, err := exec.LookPath(opts.command()); err != nil {
		return nil, err
	}
	var err error
	for range 3 {
		s := &Server{opts: opts}
		if s.Port, err = FreePort(); err != nil {
			return nil, err
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("redisproc: %s did not start: %w", opts.command(), err)
}

func (o *Options) command() string {
	if o.Sentinel {
		return "redis-sentinel"
	}
	return "redis-server"
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	var args []string
	if s.opts.Config != "" {
		args = append(args, s.opts.Config) // must come first
	}
	args = append(args,
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--dir", s.opts.Dir, "--save", "", "--daemonize", "no",
		"--logfile", filepath.Join(s.opts.Dir, "redis.log"),
	)
	switch {
	case s.opts.Sentinel:
	case s.opts.AppendOnly:
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	default:
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(s.opts.command(), append(args, s.opts.Args...)...)
	cmd.Dir = s.opts.Dir
	cmd.SysProcAttr = childAttr()
	// Pdeathsig fires when the thread that forked the child exits, not
	// the process, and Go ends threads now and then (one a locked
	// goroutine exited on, for one): a restarted server died under a
	// running test. Fork from a locked thread that waits for the child.
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
	}()
	if err := <-started; err != nil {
		return err
	}
	if err := waitPing(s.Addr, cmd.Process.Pid, exited); err != nil {
		cmd.Process.Kill()
		<-exited
		log, _ := os.ReadFile(filepath.Join(s.opts.Dir, "redis.log"))
		return fmt.Errorf("%w\n%s", err, tail(string(log), 800))
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// waitPing waits until the server at addr answers and is the process pid:
// a port freed by a stopped server can be taken by another test binary's
// server meanwhile, whose PONG must not pass for ours.
func waitPing(addr string, pid int, exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			if strings.Contains(info, "process_id:"+strconv.Itoa(pid)+"\r\n") {
				return nil
			}
			err = fmt.Errorf("%s is served by another process", addr)
		}
		select {
		case <-exited:
			return fmt.Errorf("exited at start (port taken?): %w", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no reply of its own within 10s: %w", err)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Stop shuts the server down with SHUTDOWN (so AppendOnly data survives a
// Restart), killing it if it has not exited within 10 s.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	c.Shutdown(context.Background()) // replies by closing the connection
	c.Close()
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.Kill()
	}
	s.cmd = nil
}

// Kill ends the server with SIGKILL: whatever it had not persisted is gone.
func (s *Server) Kill() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
}

// Restart starts a stopped server again on the same port and directory,
// retrying for a few seconds while the port lingers.
func (s *Server) Restart() error {
	var err error
	for range 50 {
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("redisproc: restart on %s: %w", s.Addr, err)
}
