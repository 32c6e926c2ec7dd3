package serial_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/abacus-go/abacus/internal/redistest"
	"github.com/abacus-go/abacus/serial"
	"github.com/redis/go-redis/v9"
)

// Environment of a child process; childEnv set means "be a child".
const (
	childEnv   = "SERIAL_TEST_CHILD"
	childRedis = "SERIAL_TEST_CHILD_REDIS" // redis:// URL
	childKey   = "SERIAL_TEST_CHILD_KEY"
	childCount = "SERIAL_TEST_CHILD_COUNT" // IDs to take
	childOut   = "SERIAL_TEST_CHILD_OUT"   // file for the IDs, 8 bytes little-endian each
)

// childMain is one run of a worker process: it takes COUNT IDs from KEY with
// one Allocator and one goroutine, in order, writes them to OUT and exits
// without Close, abandoning whatever its blocks had left, as a process that
// is restarted would.
func childMain() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "serial child:", err)
		return 2
	}
	opt, err := redis.ParseURL(os.Getenv(childRedis))
	if err != nil {
		return fail(err)
	}
	n, err := strconv.Atoi(os.Getenv(childCount))
	if err != nil {
		return fail(err)
	}
	f, err := os.Create(os.Getenv(childOut))
	if err != nil {
		return fail(err)
	}
	rdb := redis.NewClient(opt)
	// Small blocks so that the eight processes interleave hundreds of
	// blocks on the key.
	a, err := serial.New(rdb, os.Getenv(childKey), serial.Options{MinBlock: 16, MaxBlock: 2048})
	if err != nil {
		return fail(err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	var buf [8]byte
	ctx := context.Background()
	for i := 0; i < n; i++ {
		id, err := a.Next(ctx)
		if err != nil {
			return fail(fmt.Errorf("Next #%d: %w", i, err))
		}
		binary.LittleEndian.PutUint64(buf[:], uint64(id))
		w.Write(buf[:])
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	return 0
}

// redisURL rebuilds a redis:// URL from a client's options for a child.
func redisURL(opt *redis.Options) string {
	u := url.URL{Scheme: "redis", Host: opt.Addr, Path: "/" + strconv.Itoa(opt.DB)}
	if opt.Password != "" {
		u.User = url.UserPassword(opt.Username, opt.Password)
	}
	return u.String()
}

// TestManyProcessesNeverDuplicate runs 8 worker processes that each take
// 200,000 IDs from one key, every worker restarted midway (2 or 3 process
// runs, each a fresh Allocator that starts from a new block). No ID may
// appear twice among the 1.6M, and within each run IDs strictly increase.
func TestManyProcessesNeverDuplicate(t *testing.T) {
	rdb := redistest.Client(t)
	key := redistest.Prefix(t) + "orders"
	dir := t.TempDir()
	const workers, perWorker = 8, 200_000

	type run struct {
		worker, n int
		file      string
	}
	var runs []run
	for w := 0; w < workers; w++ {
		splits := 2 + w%2 // restarted once or twice
		left := perWorker
		for r := 0; r < splits; r++ {
			n := left / (splits - r)
			if r == 0 {
				n -= 1000 * w // uneven, so restarts do not line up
			}
			runs = append(runs, run{w, n, filepath.Join(dir, fmt.Sprintf("w%d-r%d", w, r))})
			left -= n
		}
	}

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for _, r := range runs {
				if r.worker != w {
					continue
				}
				cmd := exec.Command(os.Args[0])
				cmd.Env = append(os.Environ(),
					childEnv+"=1",
					childRedis+"="+redisURL(rdb.Options()),
					childKey+"="+key,
					childCount+"="+strconv.Itoa(r.n),
					childOut+"="+r.file,
				)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("worker %d run %s: %v\n%s", w, filepath.Base(r.file), err, out)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	all := make([]int64, 0, workers*perWorker)
	perW := make([]int, workers)
	for _, r := range runs {
		ids := readIDs(t, r.file)
		if len(ids) != r.n {
			t.Fatalf("%s: %d IDs; want %d", r.file, len(ids), r.n)
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Fatalf("%s: ID %d at %d follows %d; want strictly increasing", filepath.Base(r.file), ids[i], i, ids[i-1])
			}
		}
		perW[r.worker] += len(ids)
		all = append(all, ids...)
	}
	for w, n := range perW {
		if n != perWorker {
			t.Errorf("worker %d took %d IDs; want %d", w, n, perWorker)
		}
	}
	slices.Sort(all)
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("ID %d issued twice", all[i])
		}
	}
	end, _ := rdb.Get(context.Background(), key).Int64()
	t.Logf("%d process runs, %d IDs, no duplicate; key at %d (%d IDs lost to abandoned blocks)",
		len(runs), len(all), end, end-int64(len(all)))
}

func readIDs(t *testing.T, file string) []int64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(b)/8)
	for i := range ids {
		ids[i] = int64(binary.LittleEndian.Uint64(b[i*8:]))
	}
	return ids
}
