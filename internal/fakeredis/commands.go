package fakeredis

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Reply encoders (RESP2).
func simple(s string) []byte { return []byte("+" + s + "\r\n") }
func errReply(s string) []byte {
	return []byte("-" + s + "\r\n")
}
func integer(n int64) []byte { return []byte(":" + strconv.FormatInt(n, 10) + "\r\n") }
func bulk(b []byte) []byte {
	if b == nil {
		return []byte("$-1\r\n")
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, '$')
	out = strconv.AppendInt(out, int64(len(b)), 10)
	out = append(out, "\r\n"...)
	out = append(out, b...)
	return append(out, "\r\n"...)
}
func array(items [][]byte) []byte {
	out := []byte("*" + strconv.Itoa(len(items)) + "\r\n")
	for _, it := range items {
		out = append(out, bulk(it)...)
	}
	return out
}

var (
	ok          = simple("OK")
	nilBulk     = []byte("$-1\r\n")
	errWrongTyp = errReply("WRONGTYPE Operation against a key holding the wrong kind of value")
	errNotInt   = errReply("ERR value is not an integer or out of range")
	errSyntax   = errReply("ERR syntax error")
	errOverflow = errReply("ERR increment or decrement would overflow")
)

func wrongArgs(name string) []byte {
	return errReply("ERR wrong number of arguments for '" + name + "' command")
}

// exec runs one command and returns its encoded reply.
func (s *Server) exec(args [][]byte) []byte {
	start := time.Now()
	name := strings.ToLower(string(args[0]))
	out, known := s.dispatch(name, args[1:])
	s.commands.Add(1)
	if known {
		s.mu.Lock()
		st := s.calls[name]
		if st == nil {
			st = &cmdStats{}
			s.calls[name] = st
		}
		st.calls++
		st.usec += time.Since(start).Microseconds()
		s.mu.Unlock()
	}
	return out
}

// arity is the least and most arguments (command name excluded) of each
// supported command; most < 0 means no limit.
var arity = map[string]struct{ least, most int }{
	"ping": {0, 1}, "echo": {1, 1}, "select": {1, 1}, "client": {1, -1},
	"info": {0, -1}, "quit": {0, 0},
	"get": {1, 1}, "set": {2, 7}, "del": {1, -1}, "exists": {1, -1}, "mget": {1, -1},
	"incr": {1, 1}, "decr": {1, 1}, "incrby": {2, 2}, "decrby": {2, 2},
	"expire": {2, 2}, "pexpire": {2, 2}, "ttl": {1, 1}, "pttl": {1, 1},
	"rpush": {2, -1}, "lpush": {2, -1}, "lpop": {1, 2}, "rpop": {1, 2}, "llen": {1, 1},
	"dbsize": {0, 0}, "flushall": {0, 1}, "flushdb": {0, 1},
}

func (s *Server) dispatch(name string, a [][]byte) ([]byte, bool) {
	ar, known := arity[name]
	if !known {
		// HELLO, EVAL, EVALSHA, SCRIPT and everything else. go-redis reads
		// an error to HELLO as "RESP2 only" and carries on.
		return errReply(fmt.Sprintf("ERR unknown command '%s', with args beginning with: ", name)), false
	}
	if len(a) < ar.least || ar.most >= 0 && len(a) > ar.most {
		return wrongArgs(name), true
	}
	switch name {
	case "ping":
		if len(a) > 0 {
			return bulk(a[0]), true
		}
		return simple("PONG"), true
	case "echo":
		return bulk(a[0]), true
	case "select":
		if string(a[0]) != "0" {
			return errReply("ERR DB index is out of range"), true
		}
		return ok, true
	case "client", "quit":
		return ok, true
	case "info":
		return bulk([]byte(s.info(a))), true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	switch name {
	case "get":
		e, bad := s.str(a[0], now)
		if bad != nil {
			return bad, true
		}
		if e == nil {
			return nilBulk, true
		}
		return bulk(e.str), true
	case "set":
		return s.set(a, now), true
	case "del", "exists":
		var n int64
		for _, k := range a {
			if s.live(string(k), now) != nil {
				n++
				if name == "del" {
					delete(s.data, string(k))
				}
			}
		}
		return integer(n), true
	case "mget":
		vals := make([][]byte, len(a))
		for i, k := range a {
			if e := s.live(string(k), now); e != nil && !e.isList {
				vals[i] = e.str
			}
		}
		return array(vals), true
	case "incr", "decr", "incrby", "decrby":
		d := int64(1)
		if len(a) == 2 {
			var err error
			if d, err = strconv.ParseInt(string(a[1]), 10, 64); err != nil {
				return errNotInt, true
			}
		}
		if name[0] == 'd' {
			if d == math.MinInt64 {
				return errOverflow, true
			}
			d = -d
		}
		return s.incr(a[0], d, now), true
	case "expire", "pexpire":
		n, err := strconv.ParseInt(string(a[1]), 10, 64)
		if err != nil {
			return errNotInt, true
		}
		e := s.live(string(a[0]), now)
		if e == nil {
			return integer(0), true
		}
		unit := time.Second
		if name == "pexpire" {
			unit = time.Millisecond
		}
		e.expire = now.Add(time.Duration(n) * unit)
		return integer(1), true
	case "ttl", "pttl":
		e := s.live(string(a[0]), now)
		switch {
		case e == nil:
			return integer(-2), true
		case e.expire.IsZero():
			return integer(-1), true
		case name == "ttl":
			return integer(int64(e.expire.Sub(now).Round(time.Second) / time.Second)), true
		}
		return integer(e.expire.Sub(now).Milliseconds()), true
	case "rpush", "lpush":
		return s.push(name == "lpush", a, now), true
	case "lpop", "rpop":
		return s.pop(name == "lpop", a, now), true
	case "llen":
		e := s.live(string(a[0]), now)
		if e != nil && !e.isList {
			return errWrongTyp, true
		}
		if e == nil {
			return integer(0), true
		}
		return integer(int64(len(e.list))), true
	case "dbsize":
		n := 0
		for k := range s.data {
			if s.live(k, now) != nil {
				n++
			}
		}
		return integer(int64(n)), true
	case "flushall", "flushdb":
		s.data = make(map[string]*entry)
		return ok, true
	}
	panic("fakeredis: command in arity table without a case: " + name)
}

// live returns key's entry, dropping it if it has expired. Caller holds mu.
func (s *Server) live(key string, now time.Time) *entry {
	e := s.data[key]
	if e != nil && !e.expire.IsZero() && !now.Before(e.expire) {
		delete(s.data, key)
		return nil
	}
	return e
}

// str returns key's string entry, nil if absent, or a WRONGTYPE reply.
func (s *Server) str(key []byte, now time.Time) (*entry, []byte) {
	e := s.live(string(key), now)
	if e != nil && e.isList {
		return nil, errWrongTyp
	}
	return e, nil
}

func (s *Server) incr(key []byte, d int64, now time.Time) []byte {
	e, bad := s.str(key, now)
	if bad != nil {
		return bad
	}
	var v int64
	if e != nil {
		var err error
		if v, err = strconv.ParseInt(string(e.str), 10, 64); err != nil {
			return errNotInt
		}
	} else {
		e = &entry{}
		s.data[string(key)] = e
	}
	if d > 0 && v > math.MaxInt64-d || d < 0 && v < math.MinInt64-d {
		return errOverflow
	}
	v += d
	e.str = strconv.AppendInt(e.str[:0], v, 10)
	return integer(v)
}

// set handles SET key value [NX|XX] [EX s|PX ms] [GET is not supported].
func (s *Server) set(a [][]byte, now time.Time) []byte {
	var nx, xx bool
	var expire time.Time
	for i := 2; i < len(a); i++ {
		switch strings.ToLower(string(a[i])) {
		case "nx":
			nx = true
		case "xx":
			xx = true
		case "ex", "px":
			if i+1 >= len(a) {
				return errSyntax
			}
			n, err := strconv.ParseInt(string(a[i+1]), 10, 64)
			if err != nil || n <= 0 {
				return errReply("ERR invalid expire time in 'set' command")
			}
			unit := time.Millisecond
			if a[i][0]|0x20 == 'e' {
				unit = time.Second
			}
			expire = now.Add(time.Duration(n) * unit)
			i++
		default:
			return errSyntax
		}
	}
	if nx && xx {
		return errSyntax
	}
	exists := s.live(string(a[0]), now) != nil
	if nx && exists || xx && !exists {
		return nilBulk
	}
	s.data[string(a[0])] = &entry{str: append([]byte(nil), a[1]...), expire: expire}
	return ok
}

func (s *Server) push(left bool, a [][]byte, now time.Time) []byte {
	e := s.live(string(a[0]), now)
	if e != nil && !e.isList {
		return errWrongTyp
	}
	if e == nil {
		e = &entry{isList: true}
		s.data[string(a[0])] = e
	}
	for _, v := range a[1:] {
		v = append([]byte(nil), v...)
		if left {
			e.list = append([][]byte{v}, e.list...)
		} else {
			e.list = append(e.list, v)
		}
	}
	return integer(int64(len(e.list)))
}

func (s *Server) pop(left bool, a [][]byte, now time.Time) []byte {
	e := s.live(string(a[0]), now)
	if e != nil && !e.isList {
		return errWrongTyp
	}
	count, withCount := 1, len(a) > 1
	if withCount {
		n, err := strconv.Atoi(string(a[1]))
		if err != nil || n < 0 {
			return errReply("ERR value is out of range, must be positive")
		}
		count = n
	}
	if e == nil {
		if withCount {
			return []byte("*-1\r\n")
		}
		return nilBulk
	}
	count = min(count, len(e.list))
	var got [][]byte
	if left {
		got, e.list = e.list[:count], e.list[count:]
	} else {
		n := len(e.list) - count
		got, e.list = e.list[n:], e.list[:n]
		for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
			got[i], got[j] = got[j], got[i]
		}
	}
	if len(e.list) == 0 {
		delete(s.data, string(a[0]))
	}
	if withCount {
		return array(got)
	}
	return bulk(got[0])
}

// info renders the sections callers of INFO use: server, stats and
// commandstats, in Redis' own format.
func (s *Server) info(a [][]byte) string {
	sections := map[string]bool{}
	for _, arg := range a {
		sections[strings.ToLower(string(arg))] = true
	}
	if len(sections) == 0 {
		sections["default"] = true
	}
	want := func(name string) bool {
		return sections[name] || sections["all"] || sections["everything"] ||
			sections["default"] && name != "commandstats"
	}
	var b strings.Builder
	if want("server") {
		fmt.Fprintf(&b, "# Server\r\nredis_version:7.0.0-abacus-fake\r\nredis_mode:standalone\r\nuptime_in_seconds:%d\r\n\r\n",
			int(time.Since(s.started).Seconds()))
	}
	if want("stats") {
		fmt.Fprintf(&b, "# Stats\r\ntotal_commands_processed:%d\r\ntotal_net_input_bytes:%d\r\ntotal_net_output_bytes:%d\r\n\r\n",
			s.commands.Load(), s.netIn.Load(), s.netOut.Load())
	}
	if want("commandstats") {
		b.WriteString("# Commandstats\r\n")
		s.mu.Lock()
		names := make([]string, 0, len(s.calls))
		for n := range s.calls {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			st := s.calls[n]
			fmt.Fprintf(&b, "cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=0,failed_calls=0\r\n",
				n, st.calls, st.usec, float64(st.usec)/float64(max(st.calls, 1)))
		}
		s.mu.Unlock()
	}
	return b.String()
}
