package cache

import (
	"context"
	"errors"
	"testing"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/memory"
)

// scanOnly hides the memory store's Size.
type scanOnly struct{ handlers.Store }

func TestSizeAsksTheStore(t *testing.T) {
	ctx := context.Background()
	c := overMemory(t)
	defer c.Close()
	if _, err := c.Save(ctx, "aa", handlers.Record{Data: []byte("a|i:1;")}, 0); err != nil {
		t.Fatal(err)
	}
	// A cached copy adds nothing.
	if _, err := c.Load(ctx, "aa"); err != nil {
		t.Fatal(err)
	}
	n, b, err := c.Size(ctx)
	in, inB, ierr := c.Unwrap().(handlers.Sizer).Size(ctx)
	if err != nil || ierr != nil || n != 1 || n != in || b != inB {
		t.Fatalf("cache Size %d, %d, %v; store %d, %d, %v", n, b, err, in, inB, ierr)
	}

	m, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := New(scanOnly{m}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, _, err := plain.Size(ctx); !errors.Is(err, handlers.ErrSizeUnsupported) {
		t.Fatalf("Size over a store without one: %v", err)
	}
}
