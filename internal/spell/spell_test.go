package spell_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/abacus-go/abacus/internal/logtest"
	"github.com/abacus-go/abacus/internal/spell"
)

// TestSpellLogsOncePerSpell: a spell of failures logs its first failure
// and its recovery, whatever the number of retries, and a second spell
// does the same again; successes outside a spell log nothing.
func TestSpellLogsOncePerSpell(t *testing.T) {
	var rec logtest.Recorder
	lg := rec.Logger().With("loop", "test")
	s := spell.New(func(level slog.Level, msg string, args ...any) { lg.Log(t.Context(), level, msg, args...) },
		"loop failing", "loop recovered")
	errDown := errors.New("down")
	s.OK()
	for _, fails := range []int{5, 2} {
		for i := range fails {
			s.Fail(errDown, time.Duration(i+1)*time.Millisecond, "extra", "x")
		}
		s.OK()
		s.OK()
	}
	rec.Want(t, 2, slog.LevelWarn, "loop failing", "err", "down", "retry_in", "1ms", "extra", "x", "loop", "test")
	rec.Want(t, 2, slog.LevelInfo, "loop recovered", "failures", "2", "loop", "test")
	if r := rec.Find("loop recovered")[0]; r.Attrs["failures"] != "5" {
		t.Errorf("first recovery %v; want failures=5", r)
	}
	if n := len(rec.Records()); n != 4 {
		t.Errorf("%d events; want 4:\n%s", n, rec.Dump())
	}
}
