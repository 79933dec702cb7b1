package sealed

import (
	"errors"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
)

// scanOnly hides the memory store's Size.
type scanOnly struct{ handlers.Store }

func TestSizeIsTheSealedSize(t *testing.T) {
	mem := newMem(t)
	s := mustNew(t, mem, Options{Keys: []Key{testKey("k1", 1)}})
	defer s.Close()
	if _, err := s.Save(ctx(t), "aa", handlers.Record{Data: phpData, Expires: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	n, b, err := s.Size(ctx(t))
	if err != nil || n != 1 {
		t.Fatalf("Size = %d, %d, %v", n, b, err)
	}
	in, inB, err := mem.Size(ctx(t))
	if err != nil || in != n || inB != b {
		t.Fatalf("sealed Size %d, %d; inner %d, %d, %v", n, b, in, inB, err)
	}
	raw, err := mem.Load(ctx(t), "aa")
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.Data) <= len(phpData) {
		t.Fatalf("stored %d bytes for %d of PHP data: not sealed", len(raw.Data), len(phpData))
	}

	plain := mustNew(t, scanOnly{newMem(t)}, Options{})
	defer plain.Close()
	if _, _, err := plain.Size(ctx(t)); !errors.Is(err, handlers.ErrSizeUnsupported) {
		t.Fatalf("Size over a store without one: %v", err)
	}
}
