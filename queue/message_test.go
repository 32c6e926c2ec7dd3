package queue_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/abacus-go/abacus/queue"
)

func TestEncodeDecode(t *testing.T) {
	id := queue.ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	tests := []struct {
		body []byte
	}{{nil}, {[]byte("x")}, {bytes.Repeat([]byte{0, 0xff}, 1000)}}
	for _, tt := range tests {
		b := queue.Encode(id, tt.body)
		gotID, body, err := queue.Decode(b)
		if err != nil || gotID != id || !bytes.Equal(body, tt.body) {
			t.Fatalf("Decode(Encode(%v, %d bytes)) = %v, %d bytes, %v", id, len(tt.body), gotID, len(body), err)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("short"), append([]byte{9}, make([]byte, 20)...)} {
		if _, _, err := queue.Decode(b); !errors.Is(err, queue.ErrMalformed) {
			t.Fatalf("Decode(%q) = %v; want ErrMalformed", b, err)
		}
	}
}

func TestNewIDUnique(t *testing.T) {
	seen := map[queue.ID]bool{}
	for range 1000 {
		id := queue.NewID()
		if seen[id] {
			t.Fatalf("NewID repeated %v", id)
		}
		seen[id] = true
	}
	if s := (queue.ID{0xab}).String(); s != "ab000000000000000000000000000000" {
		t.Fatalf("ID.String() = %q", s)
	}
}
