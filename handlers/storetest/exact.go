package storetest

import (
	"testing"

	"github.com/phpsessd/phpsessd/handlers"
)

// evenExact answers ExactVersion for even versions only, so a decorator
// that answers for every version, or for none, is told apart from one
// that asks its inner store about each.
type evenExact struct{ handlers.Store }

func (evenExact) ExactVersion(v uint64) bool { return v%2 == 0 }

// hidden hides every method of the store but handlers.Store's.
type hidden struct{ handlers.Store }

// ExactVersionsForwarded checks a decorator that keeps its inner store's
// versions: it must answer ExactVersion as the inner store does, version
// by version, and never claim exact versions over a store without them.
func ExactVersionsForwarded(t *testing.T, plain handlers.Store, wrap func(inner handlers.Store) (handlers.Store, error)) {
	t.Helper()
	st, err := wrap(evenExact{plain})
	if err != nil {
		t.Fatal(err)
	}
	ev, ok := st.(handlers.ExactVersioner)
	if !ok {
		t.Fatalf("%T does not offer ExactVersion", st)
	}
	for v := uint64(1); v <= 4; v++ {
		if got, want := ev.ExactVersion(v), v%2 == 0; got != want {
			t.Fatalf("%T: ExactVersion(%d) = %v, inner store says %v", st, v, got, want)
		}
	}
	st, err = wrap(hidden{plain})
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := st.(handlers.ExactVersioner); ok && ev.ExactVersion(2) {
		t.Fatalf("%T claims exact versions over a store without them", st)
	}
}
