package incrby

import "testing"

func TestRefused(t *testing.T) {
	for _, tt := range []struct {
		msg  string
		want Refusal
	}{
		{"WRONGTYPE Operation against a key holding the wrong kind of value", WrongType},
		{"ERR value is not an integer or out of range", NotInteger},
		{"ERR increment or decrement would overflow", Overflow},
		{"OOM command not allowed when used memory > 'maxmemory'.", Other},
		{"READONLY You can't write against a read only replica.", Other},
		{"", Other},
	} {
		if got := Refused(tt.msg); got != tt.want {
			t.Errorf("Refused(%q) = %d; want %d", tt.msg, got, tt.want)
		}
	}
}
