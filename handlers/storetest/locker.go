package storetest

import (
	"testing"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
)

// lockingStore is a real store that also offers a cross-daemon locker, as
// the Redis store does.
type lockingStore struct {
	handlers.Store
	l engine.Locker
}

func (s lockingStore) EngineLocker() engine.Locker { return s.l }

// LockerForwarded checks a store decorator: wrapped around plain (a store
// without a locker) it must offer none, and around plain given a
// cross-daemon locker it must offer that very locker. A decorator that hid the locker would let
// daemons sharing the inner store hold one session at the same time.
func LockerForwarded(t *testing.T, plain handlers.Store, wrap func(inner handlers.Store) (handlers.Store, error)) {
	t.Helper()
	want := engine.NewMemLocker(nil)
	defer want.Close()
	for _, tc := range []struct {
		inner handlers.Store
		want  engine.Locker
	}{{lockingStore{plain, want}, want}, {plain, nil}} {
		st, err := wrap(tc.inner)
		if err != nil {
			t.Fatal(err)
		}
		lp, ok := st.(interface{ EngineLocker() engine.Locker })
		if !ok {
			t.Fatalf("%T does not offer EngineLocker", st)
		}
		if got := lp.EngineLocker(); got != tc.want {
			t.Fatalf("%T over %T: locker %v, want %v", st, tc.inner, got, tc.want)
		}
	}
}
