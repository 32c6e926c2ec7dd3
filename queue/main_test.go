package queue_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/queue"
)

// Environment of a child process: the test binary re-executed to act as
// one consumer or Drain process of the multi-process tests.
const (
	envChild  = "ABACUS_QUEUE_CHILD" // "consume" or "drain"
	envAddrs  = "ABACUS_QUEUE_ADDRS" // comma-separated; more than one: a cluster
	envPrefix = "ABACUS_QUEUE_PREFIX"
	envOut    = "ABACUS_QUEUE_OUT" // file of 8-byte records, see record
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envChild); mode != "" {
		if err := child(mode); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childOptions are the queue options of every child process: leases short
// enough for a test, long enough for a loaded 2-core machine under -race.
func childOptions(prefix string) queue.Options {
	return queue.Options{
		Prefix:          prefix,
		LeaseTTL:        2 * time.Second,
		BlockTimeout:    100 * time.Millisecond,
		ReclaimInterval: 200 * time.Millisecond,
		RetireAfter:     5 * time.Second,
		Concurrency:     2,
		Prefetch:        32,
		MaxAttempts:     10,
	}
}

// child runs until its stdin closes (or it is killed), appending a record
// to the file at envOut for every message it handles. Each record is one
// write(2) on an O_APPEND file, so it survives SIGKILL whole or not at all.
func child(mode string) error {
	addrs := strings.Split(os.Getenv(envAddrs), ",")
	var rdb redis.UniversalClient
	if len(addrs) > 1 {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: addrs[0]})
	}
	defer rdb.Close()
	q, err := queue.New(rdb, "jobs", childOptions(os.Getenv(envPrefix)))
	if err != nil {
		return err
	}
	out, err := os.OpenFile(os.Getenv(envOut), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	write := func(seq uint32, extra int64) error {
		var rec [8]byte
		binary.BigEndian.PutUint32(rec[:], seq)
		binary.BigEndian.PutUint32(rec[4:], uint32(extra))
		_, err := out.Write(rec[:])
		return err
	}
	switch mode {
	case "consume":
		q.Consume(ctx, func(ctx context.Context, m queue.Message) error {
			return write(binary.BigEndian.Uint32(m.Body), int64(m.Attempt))
		})
	case "drain":
		for ctx.Err() == nil {
			err := q.Drain(ctx, func(ctx context.Context, m queue.Message) error {
				if err := write(binary.BigEndian.Uint32(m.Body), m.Fence); err != nil {
					return err
				}
				time.Sleep(5 * time.Millisecond) // slow enough to be killed mid-drain
				return nil
			})
			if err != nil && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "drain:", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}
