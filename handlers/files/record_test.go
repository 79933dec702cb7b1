//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package files

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/storetest"
)

// Filesystems without user attributes keep records in sidecar files; the
// whole suite must hold there too.
func TestStoreSuiteSidecarFiles(t *testing.T) {
	storetest.Run(t, func(t *testing.T) handlers.Store {
		s := openDir(t, "?depth=1")
		s.noXattr.Store(true)
		return s
	})
}

func fileCount(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// A session with empty meta and an expiry needs no record at all; one with
// meta or "never" gets one, and going back to a plain session drops it.
func TestRecordOnlyWhenNeeded(t *testing.T) {
	s := openDir(t, "")
	ctx := context.Background()
	path := filepath.Join(s.Dir(), "sess_plain")
	rec := func() (*sidecar, metaSource) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return s.readMeta(f, "plain")
	}
	exp := time.Now().Add(time.Hour)
	v, err := s.Save(ctx, "plain", handlers.Record{Data: []byte("a|i:1;"), Expires: exp}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sc, src := rec(); src != metaNone || sc != nil {
		t.Fatalf("plain session carries a record: %+v from %d", sc, src)
	}
	got, err := s.Load(ctx, "plain")
	if err != nil || got.Meta != nil || got.Expires.Sub(exp).Abs() > time.Millisecond {
		t.Fatalf("Load = %+v, %v; want expiry %v from the mtime", got, err, exp)
	}
	if v, err = s.Save(ctx, "plain", handlers.Record{Data: []byte("a|i:1;"), Meta: []byte("m")}, v); err != nil {
		t.Fatal(err)
	}
	if sc, src := rec(); src != metaXattr || sc.Expires != 0 || string(sc.Meta) != "m" {
		t.Fatalf("record = %+v from %d, want never and meta", sc, src)
	}
	// Same bytes, no meta: the old record must not survive on the new file.
	if v, err = s.Save(ctx, "plain", handlers.Record{Data: []byte("a|i:1;"), Expires: exp}, v); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, "plain"); err != nil || got.Meta != nil || got.Expires.IsZero() {
		t.Fatalf("Load = %+v, %v; want no meta and an expiry", got, err)
	}
	// Touch to "never" needs a record, Touch back drops it.
	if err := s.Touch(ctx, "plain", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, "plain"); err != nil || !got.Expires.IsZero() || got.Version != v {
		t.Fatalf("after Touch(never): %+v, %v", got, err)
	}
	if err := s.Touch(ctx, "plain", exp); err != nil {
		t.Fatal(err)
	}
	if sc, src := rec(); src != metaNone || sc != nil {
		t.Fatalf("record after Touch back to an expiry: %+v from %d", sc, src)
	}
	if n := fileCount(t, filepath.Join(s.Dir(), metaDir)); n != 0 {
		t.Fatalf("%d sidecar files, want none", n)
	}
}

// A sidecar file from an earlier version (or a daemon on a filesystem
// without attributes) is honoured, and replaced by the attribute on the
// next write.
func TestLegacySidecarFile(t *testing.T) {
	s := openDir(t, "")
	ctx := context.Background()
	path := filepath.Join(s.Dir(), "sess_legacy")
	data := []byte("l|i:1;")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := msgpack.Marshal(&sidecar{Mtime: fi.ModTime().UnixNano(), Size: fi.Size(), Hash: version(data), Meta: []byte("old")})
	if err != nil {
		t.Fatal(err)
	}
	side := filepath.Join(s.Dir(), metaDir, "legacy")
	if err := os.WriteFile(side, b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, "legacy")
	if err != nil || string(got.Meta) != "old" || !got.Expires.IsZero() {
		t.Fatalf("Load = %+v, %v; want the sidecar file's meta and never", got, err)
	}
	if _, err := s.Save(ctx, "legacy", handlers.Record{Data: []byte("l|i:2;"), Meta: []byte("new"), Expires: time.Now().Add(time.Hour)}, got.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(side); !os.IsNotExist(err) {
		t.Fatalf("sidecar file kept after a write: %v", err)
	}
	if got, err = s.Load(ctx, "legacy"); err != nil || string(got.Meta) != "new" || got.Expires.IsZero() {
		t.Fatalf("Load = %+v, %v", got, err)
	}
}

// Temp names come from the pid and a counter; a leftover with the next
// name (a crashed process that had our pid) is skipped, not reused.
func TestTempNameCollision(t *testing.T) {
	s := openDir(t, "")
	next := filepath.Join(s.Dir(), tmpPrefix+tmpPID+"-"+itoa(tmpSeq.Load()+1))
	if err := os.WriteFile(next, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(context.Background(), "coll", handlers.Record{Data: []byte("c|i:1;")}, 0); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(next); err != nil || string(b) != "junk" {
		t.Fatalf("leftover temp file touched: %q, %v", b, err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// A record too large for the filesystem's attribute space goes to a
// sidecar file; a later small one moves back to the attribute and the
// sidecar file goes away.
func TestLargeRecordFallsBackToSidecarFile(t *testing.T) {
	s := openDir(t, "")
	ctx := context.Background()
	big := make([]byte, 128<<10)
	for i := range big {
		big[i] = byte(i)
	}
	v, err := s.Save(ctx, "big", handlers.Record{Data: []byte("b|i:1;"), Meta: big, Expires: time.Now().Add(time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	side := filepath.Join(s.Dir(), metaDir, "big")
	if _, err := os.Stat(side); err != nil {
		t.Fatalf("no sidecar file for a %d-byte record: %v", len(big), err)
	}
	got, err := s.Load(ctx, "big")
	if err != nil || string(got.Meta) != string(big) {
		t.Fatalf("Load: %d bytes of meta, %v", len(got.Meta), err)
	}
	if err := s.Touch(ctx, "big", time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err = s.Load(ctx, "big"); err != nil || string(got.Meta) != string(big) || got.Version != v {
		t.Fatalf("after Touch: %d bytes of meta, v%d, %v", len(got.Meta), got.Version, err)
	}
	if _, err := s.Save(ctx, "big", handlers.Record{Data: []byte("b|i:2;"), Meta: []byte("small"), Expires: time.Now().Add(time.Hour)}, v); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(side); !os.IsNotExist(err) {
		t.Fatalf("sidecar file kept: %v", err)
	}
	if got, err = s.Load(ctx, "big"); err != nil || string(got.Meta) != "small" {
		t.Fatalf("Load = %q, %v", got.Meta, err)
	}
}

// fsync=1 takes the same paths plus the flushes.
func TestFsyncWrites(t *testing.T) {
	s := openDir(t, "?fsync=1&depth=1")
	ctx := context.Background()
	v, err := s.Save(ctx, "fsynced", handlers.Record{Data: []byte("f|i:1;"), Meta: []byte("m")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, err = s.Save(ctx, "fsynced", handlers.Record{Data: []byte("f|i:2;"), Meta: make([]byte, 128<<10)}, v); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, "fsynced", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, "fsynced")
	if err != nil || string(got.Data) != "f|i:2;" || got.Version != v || len(got.Meta) != 128<<10 {
		t.Fatalf("Load = %q v%d (%d bytes of meta), %v", got.Data, got.Version, len(got.Meta), err)
	}
}
