package queue_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/queue"
)

// proc is a child process started by spawn.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   string
	done  chan struct{} // closed when the process has exited
	err   error         // its exit status, once done is closed
}

// spawn re-executes the test binary as a child (see child) with its own
// output file.
func spawn(t *testing.T, mode string, addrs []string, prefix, out string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+mode, envAddrs+"="+strings.Join(addrs, ","), envPrefix+"="+prefix, envOut+"="+out)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdin: stdin, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop closes the child's stdin, which makes it return from Consume or
// Drain and exit, and waits for it.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("child %s: %v", p.out, p.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("child %s did not stop", p.out)
	}
}

// record is one handled message: its sequence number and either the
// delivery attempt (consume) or the Drain fence (drain).
type record struct{ seq, extra uint32 }

func records(t *testing.T, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := make([]record, len(b)/8)
	for i := range out {
		out[i] = record{binary.BigEndian.Uint32(b[8*i:]), binary.BigEndian.Uint32(b[8*i+4:])}
	}
	return out
}

func addrsOf(rdb redis.UniversalClient) []string {
	switch c := rdb.(type) {
	case *redis.Client:
		return []string{c.Options().Addr}
	case *redis.ClusterClient:
		return c.Options().Addrs
	}
	panic(fmt.Sprintf("unknown client %T", rdb))
}

func TestCrashedConsumersLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	crashTest(t, redistest.Client(t), 100_000)
}

// crashTest pushes n messages, consumes them with 4 child processes (2
// consumers each), kills 2 of them with SIGKILL mid-run, and checks that
// every message was handled, that duplicates are exactly messages that
// were redelivered after a reclaim (that is, held by a killed process),
// and reports them.
func crashTest(t *testing.T, rdb redis.UniversalClient, n int) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	q, err := queue.New(rdb, "jobs", childOptions(prefix))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for lo := 0; lo < n; lo += 10_000 {
		if _, err := q.Push(ctx, seqRange(lo, min(lo+10_000, n))...); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("pushed %d messages in %v", n, time.Since(start))
	dir := t.TempDir()
	children := make([]*proc, 4)
	for i := range children {
		children[i] = spawn(t, "consume", addrsOf(rdb), prefix, filepath.Join(dir, fmt.Sprint("c", i)))
	}
	handled := func() int {
		total := 0
		for _, c := range children {
			if fi, err := os.Stat(c.out); err == nil {
				total += int(fi.Size() / 8)
			}
		}
		return total
	}
	for i, at := range []int{n / 4, n / 2} {
		until(t, fmt.Sprintf("%d messages handled", at), func() bool { return handled() >= at })
		children[i].kill()
		t.Logf("killed child %d after %d handled (%v)", i, handled(), time.Since(start))
	}
	count := make([]int, n)
	redelivered := make([]bool, n)
	byKilled := make([]bool, n)
	missing := n
	// Handled is not enough: a killed child may have handled messages
	// it never acked, and the reclaimer returns them (to be handled
	// again) only once the child's lease has expired.
	until(t, "every message handled and every list empty", func() bool {
		if st, err := q.Stats(ctx); err != nil || st.Ready+st.Processing != 0 {
			return false
		}
		clear(count)
		missing = n
		for i, c := range children {
			for _, r := range records(t, c.out) {
				if count[r.seq] == 0 {
					missing--
				}
				count[r.seq]++
				redelivered[r.seq] = redelivered[r.seq] || r.extra > 1
				byKilled[r.seq] = byKilled[r.seq] || i < 2
			}
		}
		return missing == 0
	})
	t.Logf("all %d handled after %v", n, time.Since(start))
	for _, c := range children[2:] {
		c.stop(t)
	}
	dups, redeliveries := 0, 0
	for seq := range n {
		if redelivered[seq] {
			redeliveries++
		}
		if count[seq] > 1 {
			dups += count[seq] - 1
			if !redelivered[seq] || !byKilled[seq] {
				t.Errorf("message %d handled %d times but was not held by a killed process (redelivered %v, by killed %v)",
					seq, count[seq], redelivered[seq], byKilled[seq])
			}
		}
	}
	o := childOptions("")
	bound := 2 * o.Concurrency * o.Prefetch
	t.Logf("duplicates: %d; messages redelivered after a kill: %d (bound: 2 kills × %d consumers × %d prefetched = %d)",
		dups, redeliveries, o.Concurrency, o.Prefetch, bound)
	if redeliveries > bound {
		t.Errorf("%d messages redelivered; at most %d can have been in flight at the kills", redeliveries, bound)
	}
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready != 0 || st.Processing != 0 || st.Dead != 0 {
		t.Errorf("Stats at the end = %+v; want every list empty", st)
	}
}

func seqRange(lo, hi int) [][]byte {
	out := make([][]byte, hi-lo)
	for i := range out {
		out[i] = binary.BigEndian.AppendUint32(nil, uint32(lo+i))
	}
	return out
}

// TestDrainOwnerKilled runs two Drain processes; the owner is killed with
// SIGKILL mid-drain. The other takes over after about one lease TTL with a
// greater fencing number, never while the first one could still act, and
// goes on in order from the message the first one was handling.
func TestDrainOwnerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	rdb := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	q, err := queue.New(rdb, "jobs", childOptions(prefix))
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	if _, err := q.Push(ctx, seqRange(0, n)...); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := spawn(t, "drain", addrsOf(rdb), prefix, filepath.Join(dir, "a"))
	until(t, "first owner draining", func() bool { return len(records(t, a.out)) >= 20 })
	b := spawn(t, "drain", addrsOf(rdb), prefix, filepath.Join(dir, "b"))
	until(t, "second caller waiting for the lease", func() bool {
		// b has connected once it polls the lease; a's progress shows a
		// still owns it.
		return len(records(t, a.out)) >= 60
	})
	if len(records(t, b.out)) != 0 {
		t.Fatalf("second Drain handled messages while the first owned the queue")
	}
	a.kill()
	killed := time.Now()
	until(t, "second caller took over", func() bool { return len(records(t, b.out)) > 0 })
	handover := time.Since(killed)
	until(t, "queue drained", func() bool {
		ra, rb := records(t, a.out), records(t, b.out)
		seen := map[uint32]bool{}
		for _, r := range append(ra, rb...) {
			seen[r.seq] = true
		}
		return len(seen) == n
	})
	b.stop(t)
	ra, rb := records(t, a.out), records(t, b.out)
	fa := ra[0].extra
	for _, r := range ra {
		if r.extra != fa {
			t.Fatalf("first owner handled under fences %d and %d; want one ownership", fa, r.extra)
		}
	}
	for _, r := range rb {
		if r.extra <= fa {
			t.Fatalf("second owner handled %d under fence %d, not above the killed owner's %d", r.seq, r.extra, fa)
		}
	}
	// In order, with at most the message in flight at the kill repeated.
	all := append(ra, rb...)
	dups := 0
	for i := 1; i < len(all); i++ {
		switch {
		case all[i].seq == all[i-1].seq && i == len(ra):
			dups++
		case all[i].seq != all[i-1].seq+1:
			t.Fatalf("handled %d after %d (owner fences %d, %d)", all[i].seq, all[i-1].seq, all[i-1].extra, all[i].extra)
		}
	}
	t.Logf("owner (fence %d) killed after %d messages; handover after %v (lease TTL %v), new fence %d; %d duplicate (in flight at the kill)",
		fa, len(ra), handover.Round(time.Millisecond), childOptions("").LeaseTTL, rb[0].extra, dups)
}
