package sealed

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary stored bytes to the record parser: it must never
// panic, must fail only with one of the package's errors, and whatever it
// accepts as a sealed record must have come through authentication or be
// an unencrypted header form. The seed corpus in testdata/fuzz/FuzzOpen
// holds valid records of every kind (sealed under the key fuzzKeys builds)
// and near misses.
func FuzzOpen(f *testing.F) {
	s := mustNew(f, newMemF(f), Options{Keys: fuzzKeys(), CompressOver: 16, MaxSize: 1 << 20})
	for _, d := range [][]byte{nil, phpData, magic[:], append(magic[:], 1, 0)} {
		f.Add(d, "seed")
	}
	f.Fuzz(func(t *testing.T, raw []byte, id string) {
		out, err := s.open(id, raw)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrAuth) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if !isSealed(raw) && !bytes.Equal(out, raw) {
			t.Fatalf("plain record altered")
		}
		// Whatever opens must seal and open again to the same bytes.
		re, err := s.seal(id, out)
		if err != nil {
			t.Fatal(err)
		}
		back, err := s.open(id, re)
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("re-seal round trip: %v", err)
		}
	})
}

func fuzzKeys() []Key { return []Key{testKey("fz2", 2), testKey("fz1", 1)} }
