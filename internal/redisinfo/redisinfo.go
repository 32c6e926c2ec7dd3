// Package redisinfo reads a Redis server's own accounting (INFO stats and
// INFO commandstats), so benchmarks and tests can count the commands and
// bytes the server saw rather than what the client believes it sent.
package redisinfo

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Snapshot is the server's cumulative accounting at one moment. The zero
// value is an empty snapshot.
type Snapshot struct {
	// Calls counts calls per command as INFO commandstats names them
	// ("incrby", "evalsha", "client|setinfo"). Commands run by Lua scripts
	// are counted under their own names too, as Redis does.
	Calls map[string]int64
	// Usec is the server's time per command, in microseconds, named as
	// in Calls.
	Usec map[string]int64
	// NetInput is total_net_input_bytes: request bytes from all clients.
	NetInput int64
	// NetOutput is total_net_output_bytes.
	NetOutput int64
}

// Read takes a Snapshot with one INFO command.
func Read(ctx context.Context, rdb redis.UniversalClient) (Snapshot, error) {
	text, err := rdb.Info(ctx, "stats", "commandstats").Result()
	if err != nil {
		return Snapshot{}, fmt.Errorf("INFO stats commandstats: %w", err)
	}
	return Parse(text)
}

// Parse reads the text of INFO stats and commandstats.
func Parse(text string) (Snapshot, error) {
	s := Snapshot{Calls: make(map[string]int64), Usec: make(map[string]int64)}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case key == "total_net_input_bytes":
			s.NetInput, _ = strconv.ParseInt(val, 10, 64)
		case key == "total_net_output_bytes":
			s.NetOutput, _ = strconv.ParseInt(val, 10, 64)
		case strings.HasPrefix(key, "cmdstat_"):
			// cmdstat_incrby:calls=12,usec=34,...
			name := strings.TrimPrefix(key, "cmdstat_")
			calls, rest, _ := strings.Cut(val, ",")
			n, err := strconv.ParseInt(strings.TrimPrefix(calls, "calls="), 10, 64)
			if err != nil {
				return s, fmt.Errorf("redisinfo: bad line %q: %w", line, err)
			}
			s.Calls[name] = n
			if usec, _, _ := strings.Cut(rest, ","); strings.HasPrefix(usec, "usec=") {
				s.Usec[name], _ = strconv.ParseInt(strings.TrimPrefix(usec, "usec="), 10, 64)
			}
		}
	}
	return s, nil
}

// Delta is the server's activity between two snapshots.
type Delta struct {
	Calls     map[string]int64 // per command, zero counts left out
	NetInput  int64
	NetOutput int64
}

// Sub returns the activity from prev to s.
func (s Snapshot) Sub(prev Snapshot) Delta {
	d := Delta{
		Calls:     make(map[string]int64),
		NetInput:  s.NetInput - prev.NetInput,
		NetOutput: s.NetOutput - prev.NetOutput,
	}
	for name, n := range s.Calls {
		if n -= prev.Calls[name]; n != 0 {
			d.Calls[name] = n
		}
	}
	return d
}

// Commands sums the calls of every command except those named in exclude
// (typically "info", the measurement's own).
func (d Delta) Commands(exclude ...string) int64 {
	var n int64
	for name, c := range d.Calls {
		skip := false
		for _, x := range exclude {
			skip = skip || name == x
		}
		if !skip {
			n += c
		}
	}
	return n
}

// RequestBytes is the size in RESP of a request of args, as it counts in
// total_net_input_bytes; use it to subtract a measurement's own requests.
func RequestBytes(args ...string) int64 {
	n := 1 + len(strconv.Itoa(len(args))) + 2
	for _, a := range args {
		n += 1 + len(strconv.Itoa(len(a))) + 2 + len(a) + 2
	}
	return int64(n)
}
