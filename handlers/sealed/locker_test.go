package sealed

import (
	"testing"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/memory"
)

type lockingStore struct {
	handlers.Store
	l engine.Locker
}

func (s lockingStore) EngineLocker() engine.Locker { return s.l }

// Sealing must not hide the inner store's cross-daemon locker, and must
// not invent one over a store without it.
func TestEngineLockerForwarded(t *testing.T) {
	m, err := memory.New(memory.Options{MaxEntries: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := engine.NewMemLocker(nil)
	defer want.Close()
	for _, tc := range []struct {
		inner handlers.Store
		want  engine.Locker
	}{{lockingStore{m, want}, want}, {m, nil}} {
		s, err := New(tc.inner, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var st handlers.Store = s
		lp, ok := st.(interface{ EngineLocker() engine.Locker })
		if !ok {
			t.Fatal("sealed store does not offer EngineLocker")
		}
		if got := lp.EngineLocker(); got != tc.want {
			t.Fatalf("over %T: locker %v, want %v", tc.inner, got, tc.want)
		}
	}
}
