package serial

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/replicas"
)

func TestErrorTypes(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		sentinel error
		contains []string
		as       func(error) bool
	}{
		{"regression", &RegressionError{Key: "orders", End: 100, Size: 100, HighWater: 400},
			ErrRegression, []string{"serial: redis counter went backwards", `"orders"`, "(0, 100]", "up to 400", "Resume"},
			func(err error) bool { var e *RegressionError; return errors.As(err, &e) && e.HighWater == 400 }},
		{"replication", replicas.NewError(ErrNotReplicated, `block (40, 50] of key "orders"`, 2, 1, time.Second, nil),
			ErrNotReplicated, []string{"serial: ", `"orders"`, "(40, 50]", "1 of 2 replicas", "1s"},
			func(err error) bool { var e *ReplicationError; return errors.As(err, &e) && e.Acked == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := fmt.Errorf("placing order: %w", tt.err)
			if !errors.Is(wrapped, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false; want true", wrapped, tt.sentinel)
			}
			if !tt.as(wrapped) {
				t.Errorf("errors.As(%v, %T) = false; want true", wrapped, tt.err)
			}
			for _, s := range tt.contains {
				if !strings.Contains(tt.err.Error(), s) {
					t.Errorf("%q does not contain %q", tt.err, s)
				}
			}
		})
	}
}

func TestSentinelsArePrefixed(t *testing.T) {
	for _, err := range []error{ErrInvalid, ErrNotInteger, ErrOverflow, ErrRegression, ErrNotReplicated, ErrClosed} {
		t.Run(err.Error(), func(t *testing.T) {
			if !strings.HasPrefix(err.Error(), "serial: ") {
				t.Errorf("%q lacks the package prefix", err)
			}
		})
	}
}
