//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package files

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
)

func TestSize(t *testing.T) {
	s := openDir(t, "?depth=1&ttl=60")
	ctx := context.Background()
	want := func(step string, sessions, bytes int64) {
		t.Helper()
		n, b, err := s.Size(ctx)
		if err != nil || n != sessions || b != bytes {
			t.Fatalf("%s: Size = %d, %d, %v; want %d, %d", step, n, b, err, sessions, bytes)
		}
	}
	want("empty", 0, 0)
	// Meta goes to the record, not the data file: only data counts.
	if _, err := s.Save(ctx, "alpha", handlers.Record{Data: []byte("a|i:1;"), Meta: []byte("meta"), Expires: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, "beta", handlers.Record{Data: make([]byte, 1000)}, 0); err != nil {
		t.Fatal(err)
	}
	want("saved", 2, 6+1000)

	// A file PHP wrote counts while it lives (mtime + ttl) and stops
	// counting once expired, before any sweep.
	path := s.sessPath("gamma")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	gamma := []byte("g|s:3:\"abc\";")
	if err := os.WriteFile(path, gamma, 0o600); err != nil {
		t.Fatal(err)
	}
	want("foreign", 3, 6+1000+int64(len(gamma)))
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	want("expired", 2, 6+1000)

	// Files PHP would not look for at this depth are not sessions.
	if err := os.WriteFile(filepath.Join(s.Dir(), "sess_misplaced"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	want("deleted", 1, 6)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.Size(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Size with a cancelled context: %v", err)
	}
	s.Close()
	if _, _, err := s.Size(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Size after Close: %v", err)
	}
}
