package lease

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestInvalidError(t *testing.T) {
	tests := []struct {
		err  *InvalidError
		want string
	}{
		{&InvalidError{Field: "name", Value: "", Reason: "must not be empty"}, `lease: invalid name "": must not be empty`},
		{&InvalidError{Field: "ttl", Value: -time.Second, Reason: "must be at least 1ms"}, `lease: invalid ttl -1s: must be at least 1ms`},
		{&InvalidError{Field: "name", Value: strings.Repeat("x", 100), Reason: "too long"}, `lease: invalid name "` + strings.Repeat("x", 40) + `…": too long`},
	}
	for _, tt := range tests {
		t.Run(tt.err.Field, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q; want %q", got, tt.want)
			}
			if !errors.Is(tt.err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false; want true", tt.err)
			}
		})
	}
}

func TestSentinelsAreDistinct(t *testing.T) {
	all := []error{ErrNotObtained, ErrLost, ErrExpired, ErrReleased, ErrNotReplicated, ErrInvalid}
	for i, a := range all {
		if !strings.HasPrefix(a.Error(), "lease: ") {
			t.Errorf("%q lacks the \"lease: \" prefix", a)
		}
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = true; want false", a, b)
			}
		}
	}
}
