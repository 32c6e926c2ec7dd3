package redisinfo_test

import (
	"testing"

	"github.com/abacus-go/abacus/internal/redisinfo"
)

func TestParse(t *testing.T) {
	text := "# Stats\r\ntotal_net_input_bytes:1000\r\ntotal_net_output_bytes:50\r\n\r\n" +
		"# Commandstats\r\ncmdstat_incrby:calls=12,usec=34,usec_per_call=2.83\r\n" +
		"cmdstat_client|setinfo:calls=2,usec=1\r\ncmdstat_info:calls=3,usec=9\r\n"
	s, err := redisinfo.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if s.NetInput != 1000 || s.Calls["incrby"] != 12 || s.Calls["client|setinfo"] != 2 || s.Usec["incrby"] != 34 {
		t.Fatalf("Parse = %+v; want NetInput 1000, incrby 12 calls in 34 µs, client|setinfo 2", s)
	}
	d := s.Sub(redisinfo.Snapshot{Calls: map[string]int64{"incrby": 2}, NetInput: 400})
	if got := d.Commands("info"); got != 12 {
		t.Fatalf("Commands(info) = %d; want 12", got)
	}
	if d.NetInput != 600 {
		t.Fatalf("NetInput delta = %d; want 600", d.NetInput)
	}
}
