//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package files

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/storetest"
)

func openDir(t *testing.T, query string) *Store {
	t.Helper()
	s, err := handlers.Open(context.Background(), "files://"+filepath.ToSlash(t.TempDir())+query)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*Store)
}

func TestStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) handlers.Store { return openDir(t, "") })
}

func TestStoreSuiteDepth2(t *testing.T) {
	storetest.Run(t, func(t *testing.T) handlers.Store { return openDir(t, "?depth=2&mode=0660&ttl=600") })
}

func TestParseURL(t *testing.T) {
	good := map[string]Options{
		"files:///var/sess":                          {Dir: "/var/sess"},
		"files://localhost/var/sess?depth=2":         {Dir: "/var/sess", Depth: 2},
		"files:///d?mode=0640&ttl=60&fsync=1":        {Dir: "/d", Mode: 0o640, TTL: time.Minute, Fsync: true},
		"files:relative/dir?mode=600":                {Dir: "relative/dir", Mode: 0o600},
		"files:///d?depth=0&mode=0600&ttl=1&fsync=0": {Dir: "/d", Mode: 0o600, TTL: time.Second},
	}
	for raw, want := range good {
		u, _ := url.Parse(raw)
		got, err := ParseURL(u)
		if err != nil || got != want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
	for _, raw := range []string{
		"files://host/d", "files://", "files:///d?depth=-1", "files:///d?depth=99", "files:///d?mode=0999",
		"files:///d?mode=0400", "files:///d?ttl=0", "files:///d?fsync=maybe", "files:///d?bogus=1",
	} {
		u, _ := url.Parse(raw)
		if _, err := ParseURL(u); err == nil {
			t.Errorf("ParseURL(%q) succeeded, want an error", raw)
		}
	}
}

func TestSavePathURL(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/php/sessions":        "files:///var/lib/php/sessions",
		"2;/var/lib/php/sessions":      "files:///var/lib/php/sessions?depth=2",
		"0;/tmp":                       "files:///tmp",
		"3;0660;/var/lib/php/sessions": "files:///var/lib/php/sessions?depth=3&mode=0660",
	} {
		got, err := SavePathURL(in)
		if err != nil || got != want {
			t.Errorf("SavePathURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x;/d", "1;2;3;/d", "2;0999;/d", "2;"} {
		if got, err := SavePathURL(bad); err == nil {
			t.Errorf("SavePathURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestLayoutAndMode(t *testing.T) {
	s := openDir(t, "?depth=2&mode=0640")
	ctx := context.Background()
	id := "abcdef0123456789"
	if _, err := s.Save(ctx, id, handlers.Record{Data: []byte("k|i:1;"), Meta: []byte("m"), Expires: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir(), "a", "b", "sess_"+id)
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "k|i:1;" {
		t.Fatalf("%s holds %q (%v), want exactly the PHP-encoded data", path, b, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o750 {
		t.Fatalf("dir mode %v, want 0750", di.Mode().Perm())
	}
	// PHP's gc judges by mtime + gc_maxlifetime: with ttl 1440 and one
	// hour of expiry, mtime must lie about 36 minutes ahead.
	if d := time.Until(fi.ModTime()); d < 35*time.Minute || d > 37*time.Minute {
		t.Fatalf("mtime %v ahead, want expires - ttl", d)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	// The record travels on the file itself: no sidecar file is written.
	if _, err := os.Stat(filepath.Join(s.Dir(), metaDir, id)); !os.IsNotExist(err) {
		t.Fatalf("sidecar file written although the filesystem takes attributes: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if sc, src := s.readMeta(f, id); src != metaXattr || sc == nil || string(sc.Meta) != "m" {
		t.Fatalf("record = %+v from %d, want meta \"m\" in the attribute", sc, src)
	}
}

// A file PHP wrote has no sidecar: its version is the content hash and it
// expires ttl after its mtime.
func TestForeignFile(t *testing.T) {
	s := openDir(t, "?ttl=60")
	ctx := context.Background()
	path := filepath.Join(s.Dir(), "sess_foreign1")
	if err := os.WriteFile(path, []byte("a|i:5;"), 0o600); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(-30 * time.Second)
	os.Chtimes(path, mt, mt)
	rec, err := s.Load(ctx, "foreign1")
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Data) != "a|i:5;" || rec.Version != version([]byte("a|i:5;")) || rec.Meta != nil {
		t.Fatalf("Load = %+v", rec)
	}
	if d := rec.Expires.Sub(mt.Add(time.Minute)); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("Expires = %v, want mtime + ttl = %v", rec.Expires, mt.Add(time.Minute))
	}
	old := time.Now().Add(-2 * time.Minute)
	os.Chtimes(path, old, old)
	if _, err := s.Load(ctx, "foreign1"); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("Load of a file older than ttl = %v, want ErrNotFound", err)
	}

	// Meta survives PHP touching the file (same bytes) but not PHP
	// rewriting it.
	v, err := s.Save(ctx, "foreign2", handlers.Record{Data: []byte("b|i:1;"), Meta: []byte("fmt"), Expires: time.Now().Add(time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p2 := filepath.Join(s.Dir(), "sess_foreign2")
	now := time.Now()
	os.Chtimes(p2, now, now)
	rec, err = s.Load(ctx, "foreign2")
	if err != nil || string(rec.Meta) != "fmt" || rec.Version != v {
		t.Fatalf("after a touch: %+v, %v", rec, err)
	}
	if d := rec.Expires.Sub(now.Add(time.Minute)); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("after a foreign touch Expires = %v, want mtime + ttl", rec.Expires)
	}
	os.WriteFile(p2, []byte("b|i:2;"), 0o600)
	rec, err = s.Load(ctx, "foreign2")
	if err != nil || rec.Meta != nil || rec.Version == v {
		t.Fatalf("after a rewrite: %+v, %v", rec, err)
	}
}

// An empty sess file (PHP's session_start creates one) is a session with
// empty data; one we created and abandoned is not left behind.
func TestEmptyFile(t *testing.T) {
	s := openDir(t, "")
	ctx := context.Background()
	os.WriteFile(filepath.Join(s.Dir(), "sess_empty"), nil, 0o600)
	rec, err := s.Load(ctx, "empty")
	if err != nil || len(rec.Data) != 0 || rec.Version == 0 {
		t.Fatalf("Load(empty file) = %+v, %v", rec, err)
	}
	if _, err := s.Save(ctx, "empty", handlers.Record{Data: []byte("x")}, 0); !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save(expect 0) over an existing empty session = %v", err)
	}
	if _, err := s.Save(ctx, "empty", handlers.Record{Data: []byte("x")}, rec.Version); err != nil {
		t.Fatal(err)
	}
}

func TestSweepOrphansAndTemps(t *testing.T) {
	s := openDir(t, "?depth=1")
	ctx := context.Background()
	os.WriteFile(filepath.Join(s.Dir(), metaDir, "orphan"), []byte{0x80}, 0o600)
	os.MkdirAll(filepath.Join(s.Dir(), "x"), 0o700)
	tmp := filepath.Join(s.Dir(), "x", tmpPrefix+"123")
	os.WriteFile(tmp, []byte("junk"), 0o600)
	old := time.Now().Add(-2 * staleTmp)
	os.Chtimes(tmp, old, old)
	// Files PHP would not find at this depth are not ours to judge.
	os.WriteFile(filepath.Join(s.Dir(), "sess_misplaced"), []byte("x"), 0o600)
	os.Chtimes(filepath.Join(s.Dir(), "sess_misplaced"), old, old)
	if _, err := s.Save(ctx, "xlive", handlers.Record{Data: []byte("x")}, 0); err != nil {
		t.Fatal(err)
	}
	n, err := s.Sweep(ctx, time.Now())
	if err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	for _, gone := range []string{filepath.Join(s.Dir(), metaDir, "orphan"), tmp} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s survived Sweep", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "sess_misplaced")); err != nil {
		t.Errorf("sess_misplaced removed by Sweep: %v", err)
	}
	if rec, err := s.Load(ctx, "xlive"); err != nil || !rec.Expires.IsZero() {
		t.Errorf("xlive after Sweep: %+v, %v; want alive, never expiring", rec, err)
	}
}

func TestSweepSkipsLockedFile(t *testing.T) {
	s := openDir(t, "")
	ctx := context.Background()
	if _, err := s.Save(ctx, "busy", handlers.Record{Data: []byte("x"), Expires: time.Now().Add(-time.Second)}, 0); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(filepath.Join(s.Dir(), "sess_busy"))
	defer f.Close()
	syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	if n, err := s.Sweep(ctx, time.Now()); n != 0 || err != nil {
		t.Fatalf("Sweep of a locked file = %d, %v", n, err)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if n, err := s.Sweep(ctx, time.Now()); n != 1 || err != nil {
		t.Fatalf("Sweep after unlock = %d, %v", n, err)
	}
}

func TestSymlinkRefused(t *testing.T) {
	s := openDir(t, "")
	target := filepath.Join(t.TempDir(), "target")
	os.WriteFile(target, []byte("secret"), 0o600)
	os.Symlink(target, filepath.Join(s.Dir(), "sess_link"))
	if rec, err := s.Load(context.Background(), "link"); err == nil {
		t.Fatalf("Load followed a symlink: %q", rec.Data)
	}
	if _, err := s.Save(context.Background(), "link", handlers.Record{Data: []byte("x")}, 0); err == nil {
		t.Fatal("Save followed a symlink")
	}
	if b, _ := os.ReadFile(target); string(b) != "secret" {
		t.Fatal("symlink target changed")
	}
}

// A flock held elsewhere delays Save; a deadline ends the wait promptly,
// and the helper goroutine goes away once the holder releases.
func TestLockWaitCancellable(t *testing.T) {
	s := openDir(t, "")
	ctx := context.Background()
	v, err := s.Save(ctx, "held", handlers.Record{Data: []byte("1")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	holder, _ := os.Open(filepath.Join(s.Dir(), "sess_held"))
	defer holder.Close()
	if err := syscall.Flock(int(holder.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	dctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	start := time.Now()
	_, err = s.Save(dctx, "held", handlers.Record{Data: []byte("2")}, v)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("Save under a held flock = %v after %v, want DeadlineExceeded after ~150ms", err, time.Since(start))
	}
	if errors.Is(err, handlers.ErrUnavailable) {
		t.Fatalf("a deadline is not the store being down: %v", err)
	}
	dctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = s.Load(dctx, "held")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load under a held flock = %v", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.Save(ctx, "held", handlers.Record{Data: []byte("3")}, v)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Save finished while the flock was held: %v", err)
	default:
	}
	syscall.Flock(int(holder.Fd()), syscall.LOCK_UN)
	if err := <-done; err != nil {
		t.Fatalf("Save after release: %v", err)
	}
	if rec, err := s.Load(ctx, "held"); err != nil || string(rec.Data) != "3" {
		t.Fatalf("Load = %q, %v", rec.Data, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Fatalf("%d goroutines, %d before: abandoned lock waiters leaked", n, base)
	}
}

func TestIDShorterThanDepth(t *testing.T) {
	s := openDir(t, "?depth=3")
	if _, err := s.Save(context.Background(), "ab", handlers.Record{Data: []byte("x")}, 0); err == nil || strings.Contains(err.Error(), "panic") {
		t.Fatalf("Save(id shorter than depth) = %v", err)
	}
}

// Two stores on one directory share nothing but the files, as two daemons
// would: flock plus the inode check must keep every increment.
func TestTwoStoresShareDir(t *testing.T) {
	dir := t.TempDir()
	a, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const workers, each = 8, 5
	errs := make(chan error, 2*workers)
	for _, s := range []*Store{a, b} {
		for w := 0; w < workers; w++ {
			go func(s *Store) {
				for i := 0; i < each; i++ {
					for {
						var n int
						var expect uint64
						rec, err := s.Load(ctx, "shared")
						if err == nil {
							n, _ = strconv.Atoi(string(rec.Data))
							expect = rec.Version
						} else if !errors.Is(err, handlers.ErrNotFound) {
							errs <- err
							return
						}
						_, err = s.Save(ctx, "shared", handlers.Record{Data: []byte(strconv.Itoa(n + 1))}, expect)
						if err == nil {
							break
						}
						if !errors.Is(err, handlers.ErrVersionMismatch) {
							errs <- err
							return
						}
					}
				}
				errs <- nil
			}(s)
		}
	}
	for i := 0; i < 2*workers; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	rec, err := a.Load(ctx, "shared")
	if err != nil || string(rec.Data) != strconv.Itoa(2*workers*each) {
		t.Fatalf("counter = %q, %v; want %d", rec.Data, err, 2*workers*each)
	}
}
