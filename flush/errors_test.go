package flush

import (
	"reflect"
	"testing"
)

// TestErrorsCarryNoDelta: the errors a Flusher hands out (through Flush,
// Stats.LastError and OnError) report keys and amounts, never a Delta,
// whose Ref is the Source's own handle on its bookkeeping.
func TestErrorsCarryNoDelta(t *testing.T) {
	delta := reflect.TypeFor[Delta]()
	for _, err := range []error{&KeyError{}, &LostError{}, &PendingError{}, &RegressionError{}, &ReplicationError{}} {
		if path, ok := reaches(reflect.TypeOf(err), delta, map[reflect.Type]bool{}); ok {
			t.Errorf("%T carries a Delta at %s", err, path)
		}
	}
}

// reaches reports whether a value of type typ can hold a want, and
// through which field.
func reaches(typ, want reflect.Type, seen map[reflect.Type]bool) (string, bool) {
	if typ == want {
		return "", true
	}
	if seen[typ] {
		return "", false
	}
	seen[typ] = true
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return reaches(typ.Elem(), want, seen)
	case reflect.Map:
		if p, ok := reaches(typ.Key(), want, seen); ok {
			return p, true
		}
		return reaches(typ.Elem(), want, seen)
	case reflect.Struct:
		for i := range typ.NumField() {
			f := typ.Field(i)
			if p, ok := reaches(f.Type, want, seen); ok {
				return "." + f.Name + p, true
			}
		}
	}
	return "", false
}
