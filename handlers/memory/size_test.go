package memory

import (
	"context"
	"errors"
	"testing"

	"github.com/phpsessd/phpsessd/handlers"
)

func TestSize(t *testing.T) {
	ctx := context.Background()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := func(step string, sessions, bytes int64) {
		t.Helper()
		n, b, err := s.Size(ctx)
		if err != nil || n != sessions || b != bytes {
			t.Fatalf("%s: Size = %d, %d, %v; want %d, %d", step, n, b, err, sessions, bytes)
		}
	}
	want("empty", 0, 0)
	v, err := s.Save(ctx, "aa", handlers.Record{Data: []byte("x|i:1;"), Meta: []byte("mm")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want("one", 1, EntryOverhead+2+6+2)
	if _, err := s.Save(ctx, "bbb", handlers.Record{Data: make([]byte, 100)}, 0); err != nil {
		t.Fatal(err)
	}
	want("two", 2, 2*EntryOverhead+2+6+2+3+100)
	if _, err := s.Save(ctx, "aa", handlers.Record{Data: []byte("x|i:12;")}, v); err != nil {
		t.Fatal(err)
	}
	want("replaced", 2, 2*EntryOverhead+2+7+3+100)
	if _, err := s.Delete(ctx, "bbb"); err != nil {
		t.Fatal(err)
	}
	want("deleted", 1, EntryOverhead+2+7)
	s.Close()
	if _, _, err := s.Size(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Size after Close: %v", err)
	}
}
