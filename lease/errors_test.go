package lease

import (
	"errors"
	"strings"
	"testing"
)

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
