package replicas

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestError(t *testing.T) {
	errSentinel := errors.New("pkg: not acknowledged by replicas")
	for _, tt := range []struct {
		name string
		err  *Error
		text string
		also error // wrapped besides the sentinel, or nil
	}{
		{"short", NewError(errSentinel, `push of 3 messages to queue "jobs"`, 2, 1, time.Second, nil),
			`pkg: push of 3 messages to queue "jobs": 1 of 2 replicas acknowledged within 1s`, nil},
		{"WAIT failed", NewError(errSentinel, `write of key "l"`, 1, 0, time.Second, context.DeadlineExceeded),
			`pkg: write of key "l": WAIT 1: context deadline exceeded`, context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := fmt.Errorf("caller: %w", tt.err)
			if got := tt.err.Error(); got != tt.text {
				t.Errorf("Error() = %q; want %q", got, tt.text)
			}
			if !errors.Is(wrapped, errSentinel) {
				t.Errorf("errors.Is(%v, sentinel) = false; want true", wrapped)
			}
			if tt.also != nil && !errors.Is(wrapped, tt.also) {
				t.Errorf("errors.Is(%v, %v) = false; want true", wrapped, tt.also)
			}
			var e *Error
			if !errors.As(wrapped, &e) || e != tt.err {
				t.Errorf("errors.As(%v, *Error) did not find it", wrapped)
			}
			if strings.Count(wrapped.Error(), "pkg:") != 1 {
				t.Errorf("%q names the package more than once", wrapped)
			}
		})
	}
}

// TestErrorNotFromNewError: an Error built without NewError, as a literal
// or the zero value, neither panics nor wraps a nil error.
func TestErrorNotFromNewError(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  *Error
		text string
		errs []error // what Unwrap returns
	}{
		{"zero", &Error{}, "write: 0 of 0 replicas acknowledged within 0s", nil},
		{"literal", &Error{Op: `write of key "l"`, Want: 1, Timeout: time.Second},
			`write of key "l": 0 of 1 replicas acknowledged within 1s`, nil},
		{"literal, WAIT failed", &Error{Want: 1, Err: context.Canceled},
			"write: WAIT 1: context canceled", []error{context.Canceled}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.text {
				t.Errorf("Error() = %q; want %q", got, tt.text)
			}
			got := tt.err.Unwrap()
			if len(got) != len(tt.errs) {
				t.Fatalf("Unwrap() = %v; want %v", got, tt.errs)
			}
			for i := range got {
				if got[i] != tt.errs[i] {
					t.Errorf("Unwrap()[%d] = %v; want %v", i, got[i], tt.errs[i])
				}
			}
		})
	}
}
