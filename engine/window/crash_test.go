package window_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/engine"
	"github.com/abacus-go/abacus/engine/window"
	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/queue"
)

// TestMain runs the child processes of the crash test when this binary was
// started as one, and the tests otherwise.
func TestMain(m *testing.M) {
	if mode := os.Getenv(winChildEnv); mode != "" {
		if err := windowChild(mode); err != nil {
			fmt.Fprintln(os.Stderr, "window child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The windows test's processes are this test binary run again with these
// variables set; TestMain hands them to windowChild.
const (
	winChildEnv  = "ABACUS_WINDOW_CHILD" // "writer" or "rollup"
	winAddrEnv   = "ABACUS_WINDOW_REDIS"
	winPrefixEnv = "ABACUS_WINDOW_PREFIX"
	winT0Env     = "ABACUS_WINDOW_T0" // first window start, ms
	winOutEnv    = "ABACUS_WINDOW_OUT"
	winCount     = 5
	winSize      = time.Second
)

const winQueue = "windows"

var winRollup = window.RollupOptions{Grace: 500 * time.Millisecond, Interval: 50 * time.Millisecond, LeaseTTL: time.Second}

// windowChild runs a rollup contender and, as a writer, adds to winCount
// windows from T0 and then writes its per-window sums as JSON to the out
// file. It runs until its stdin closes.
func windowChild(mode string) error {
	prefix := os.Getenv(winPrefixEnv)
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv(winAddrEnv)})
	defer rdb.Close()
	e, err := engine.New(rdb, engine.Options{Namespace: prefix, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		return err
	}
	q, err := queue.New(rdb, winQueue, queue.Options{Prefix: prefix})
	if err != nil {
		return err
	}
	r, err := window.StartRollup(context.Background(), e, q, winRollup)
	if err != nil {
		return err
	}
	if mode == "writer" {
		t0, _ := strconv.ParseInt(os.Getenv(winT0Env), 10, 64)
		sums, err := write(e, prefix, time.UnixMilli(t0))
		if err != nil {
			return err
		}
		b, _ := json.Marshal(sums)
		if err := os.WriteFile(os.Getenv(winOutEnv), b, 0o644); err != nil {
			return err
		}
	}
	io.Copy(io.Discard, os.Stdin)
	r.Close(context.Background())
	return e.Close(context.Background())
}

// write adds to the windowed counter from t0 for winCount windows, through
// AddAt so that it knows which window each delta went to, and returns the
// sum per window start (ms).
func write(e *engine.Engine, prefix string, t0 time.Time) (map[int64]int64, error) {
	w, err := window.New(e, "pv", window.Options{Size: winSize})
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Until(t0))
	end := t0.Add(winCount * winSize)
	sums := map[int64]int64{}
	for i := int64(0); ; i++ {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		d := i%7 + 1
		w.AddAt(now, d)
		sums[now.UnixMilli()-now.UnixMilli()%winSize.Milliseconds()] += d
		if i%64 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return sums, e.Flush(ctx)
}

type winProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   string
	done  chan struct{}
}

func startWindowChild(t *testing.T, mode, addr, prefix string, t0 int64, out string) *winProc {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), winChildEnv+"="+mode, winAddrEnv+"="+addr, winPrefixEnv+"="+prefix,
		winT0Env+"="+strconv.FormatInt(t0, 10), winOutEnv+"="+out)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &winProc{cmd: cmd, stdin: stdin, out: out, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// TestExactTotalsAcrossAKilledHolder: 3 writer processes count into
// winCount one-second windows while a fourth process holds the rollup
// lease; it is killed with SIGKILL after the first window is published,
// and a writer's rollup takes over. Every window must be published, every
// copy of it with the exact sum of what the writers added to it.
func TestExactTotalsAcrossAKilledHolder(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	q := newQueue(t, rdb, prefix, winQueue)
	ready := q.Keys().Ready
	dir := t.TempDir()

	owner := startWindowChild(t, "rollup", srv.Addr, prefix, 0, "")
	redistest.WaitFor(t, "the rollup child holds the lease", func() bool {
		n, _ := rdb.Exists(ctx, prefix+"lease:{"+window.LeaseName("")+"}").Result()
		return n == 1
	})
	t0 := (time.Now().Add(2*time.Second).UnixMilli()/1000 + 1) * 1000
	writers := make([]*winProc, 3)
	for i := range writers {
		writers[i] = startWindowChild(t, "writer", srv.Addr, prefix, t0, filepath.Join(dir, fmt.Sprint("w", i)))
	}
	redistest.WaitFor(t, "the first window published", func() bool { return rdb.LLen(ctx, ready).Val() >= 1 })
	owner.cmd.Process.Signal(syscall.SIGKILL)
	<-owner.done
	killed := time.Now()
	t.Logf("rollup owner killed %v after t0, %d window(s) published", killed.Sub(time.UnixMilli(t0)).Round(time.Millisecond), rdb.LLen(ctx, ready).Val())
	redistest.WaitFor(t, "every window published", func() bool { return rdb.LLen(ctx, ready).Val() >= winCount })
	redistest.WaitFor(t, "writers reported", func() bool {
		for _, w := range writers {
			if _, err := os.Stat(w.out); err != nil {
				return false
			}
		}
		return true
	})
	want := map[int64]int64{}
	for _, w := range writers {
		b, err := os.ReadFile(w.out)
		if err != nil {
			t.Fatal(err)
		}
		var sums map[int64]int64
		if err := json.Unmarshal(b, &sums); err != nil {
			t.Fatal(err)
		}
		for s, n := range sums {
			want[s] += n
		}
	}
	// Stop the writers (and their rollups): anything published twice is
	// in the queue by then.
	for _, w := range writers {
		w.stdin.Close()
		<-w.done
	}
	recs, ids := published(t, rdb, q)
	got := map[int64]int64{}
	for i, r := range recs {
		if total, dup := got[r.StartMS]; dup {
			// A holder killed between its push and its mark: the next one
			// publishes again, with the same total under the same ID.
			t.Logf("window %d published again", r.StartMS)
			if total != r.Total {
				t.Errorf("window %d published with totals %d and %d", r.StartMS, total, r.Total)
			}
		}
		if ids[i] != window.MessageID(r.Name, r.StartMS, r.SizeMS) {
			t.Errorf("window %d published under ID %v; want its MessageID", r.StartMS, ids[i])
		}
		got[r.StartMS] = r.Total
		t.Logf("window %s: total %d (writers added %d)", r.Start().Format("15:04:05"), r.Total, want[r.StartMS])
	}
	if len(want) != winCount || len(got) != winCount {
		t.Fatalf("writers used %d windows, %d published; want %d", len(want), len(got), winCount)
	}
	for s, n := range want {
		if got[s] != n {
			t.Errorf("window %d published total %d; writers added %d", s, got[s], n)
		}
	}
	if n := rdb.ZCard(ctx, prefix+"{"+window.DefaultGroup+"}windows:pending").Val(); n != 0 {
		t.Errorf("%d windows still pending", n)
	}
}
