package all

import (
	"context"
	"slices"
	"testing"

	"github.com/phpsessd/phpsessd/handlers"
)

func TestSchemesRegistered(t *testing.T) {
	for _, scheme := range []string{"files", "memory", "redis", "rediss", "redis+cluster", "redis+sentinel"} {
		if !slices.Contains(handlers.Schemes(), scheme) {
			t.Errorf("scheme %q not registered; have %v", scheme, handlers.Schemes())
		}
	}
	for _, u := range []string{"memory://", "files://" + t.TempDir() + "?depth=1"} {
		s, err := handlers.Open(context.Background(), u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		s.Close()
	}
}
