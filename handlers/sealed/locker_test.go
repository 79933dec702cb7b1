package sealed

import (
	"testing"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/memory"
	"github.com/phpsessd/phpsessd/handlers/storetest"
)

func TestEngineLockerForwarded(t *testing.T) {
	m, err := memory.New(memory.Options{MaxEntries: 100})
	if err != nil {
		t.Fatal(err)
	}
	storetest.LockerForwarded(t, m, func(inner handlers.Store) (handlers.Store, error) {
		return New(inner, Options{})
	})
}

func TestExactVersionsForwarded(t *testing.T) {
	m, err := memory.New(memory.Options{MaxEntries: 100})
	if err != nil {
		t.Fatal(err)
	}
	storetest.ExactVersionsForwarded(t, m, func(inner handlers.Store) (handlers.Store, error) {
		return New(inner, Options{})
	})
}
