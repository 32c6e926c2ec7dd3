package window

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/abacus-go/abacus/queue"
)

// Record is what the rollup publishes for each finalized window, as JSON
// in the body of a queue message whose ID is MessageID of the window.
type Record struct {
	Name    string `json:"name"`     // the windowed counter's name
	StartMS int64  `json:"start_ms"` // window start, ms since the Unix epoch
	SizeMS  int64  `json:"size_ms"`  // window length in ms
	Total   int64  `json:"total"`    // the count in Redis at finalization
}

// Start returns the window's start time.
func (r Record) Start() time.Time { return time.UnixMilli(r.StartMS) }

// ParseRecord decodes the body of a message published by a rollup.
func ParseRecord(body []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("window: record: %w", err)
	}
	return r, nil
}

// MessageID returns the queue message ID under which the window of the
// named counter starting at startMS is published: a hash of the window,
// the same however often it is published.
func MessageID(name string, startMS, sizeMS int64) queue.ID {
	sum := sha256.Sum256([]byte(pendingMember(sizeMS, startMS, name)))
	var id queue.ID
	copy(id[:], sum[:])
	return id
}

// pendingMember identifies a window in its group's pending set: size,
// start and name, from which the rollup rebuilds the counter name.
func pendingMember(size, start int64, name string) string {
	return strconv.FormatInt(size, 10) + ":" + strconv.FormatInt(start, 10) + ":" + name
}

func parsePendingMember(m string) (size, start int64, name string, err error) {
	a, rest, ok1 := strings.Cut(m, ":")
	b, name, ok2 := strings.Cut(rest, ":")
	size, err1 := strconv.ParseInt(a, 10, 64)
	start, err2 := strconv.ParseInt(b, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || size <= 0 {
		return 0, 0, "", fmt.Errorf("window: malformed pending window %q", m)
	}
	return size, start, name, nil
}
