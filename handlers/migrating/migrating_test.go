package migrating

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	_ "github.com/phpsessd/phpsessd/handlers/files"
	"github.com/phpsessd/phpsessd/handlers/memory"
	"github.com/phpsessd/phpsessd/handlers/storetest"
)

const memURL = "memory://?max_entries=10000&max_bytes=67108864"

func migratingURL(oldURL, newURL string, until time.Time) string {
	q := url.Values{"old": {oldURL}, "new": {newURL}, "until": {until.UTC().Format(time.RFC3339)}}
	return "migrating://?" + q.Encode()
}

// The decorator must be indistinguishable from a single store, both while
// migrating (old consulted) and after the cut-over.
func TestStoreSuite(t *testing.T) {
	for name, until := range map[string]time.Time{
		"migrating":   time.Now().Add(24 * time.Hour),
		"after-until": time.Now().Add(-time.Hour),
	} {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) handlers.Store {
				// Two URLs that differ, so each side gets a store of its own.
				s, err := handlers.Open(context.Background(), migratingURL(memURL, "memory://?max_entries=10001&max_bytes=67108864", until))
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

type fixture struct {
	old, new handlers.Store
	s        *Store
	clock    time.Time
	mu       sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	mk := func() handlers.Store {
		st, err := memory.New(memory.Options{MaxEntries: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	f := &fixture{old: mk(), new: mk(), clock: time.Now()}
	s, err := New(f.old, f.new, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.clock }
	f.s = s
	t.Cleanup(func() { _ = s.Close() })
	return f
}

func (f *fixture) advance(d time.Duration) { f.mu.Lock(); f.clock = f.clock.Add(d); f.mu.Unlock() }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLoadFallsBackAndCopiesKeepingExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	exp := time.Now().Add(17 * time.Minute)
	if _, err := f.old.Save(ctx, "abc1", handlers.Record{Data: []byte("a|i:1;"), Meta: []byte("m"), Expires: exp}, 0); err != nil {
		t.Fatal(err)
	}
	rec, err := f.s.Load(ctx, "abc1")
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Data) != "a|i:1;" || string(rec.Meta) != "m" || !rec.Expires.Equal(exp) {
		t.Fatalf("Load = %+v", rec)
	}
	inNew, err := f.new.Load(ctx, "abc1")
	if err != nil {
		t.Fatalf("first read did not copy into new: %v", err)
	}
	if inNew.Version != rec.Version || !inNew.Expires.Equal(exp) || string(inNew.Data) != "a|i:1;" {
		t.Fatalf("copy in new = %+v, Load returned version %d", inNew, rec.Version)
	}
	if f.s.Copied() != 1 {
		t.Fatalf("Copied = %d", f.s.Copied())
	}
	// The version handed out works for new's CAS, and writes leave old alone.
	if _, err := f.s.Save(ctx, "abc1", handlers.Record{Data: []byte("a|i:2;"), Expires: exp}, rec.Version); err != nil {
		t.Fatalf("Save with the version Load returned: %v", err)
	}
	if o, _ := f.old.Load(ctx, "abc1"); string(o.Data) != "a|i:1;" {
		t.Fatalf("old changed to %q", o.Data)
	}
	if r, _ := f.s.Load(ctx, "abc1"); string(r.Data) != "a|i:2;" {
		t.Fatalf("Load after Save = %q", r.Data)
	}
}

func TestExpiredInOldIsNotCopied(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	if _, err := f.old.Save(ctx, "gone", handlers.Record{Data: []byte("x"), Expires: time.Now().Add(-time.Second)}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Load(ctx, "gone"); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("Load of an expired old session = %v, want ErrNotFound", err)
	}
	if _, err := f.new.Load(ctx, "gone"); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatal("expired session copied into new")
	}
}

func TestCreateOverOldSessionIsAConflict(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	if _, err := f.old.Save(ctx, "dup", handlers.Record{Data: []byte("old")}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Save(ctx, "dup", handlers.Record{Data: []byte("fresh")}, 0); !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save(expect 0) over a session that lives in old = %v, want ErrVersionMismatch", err)
	}
	if r, _ := f.s.Load(ctx, "dup"); string(r.Data) != "old" {
		t.Fatalf("Load = %q, want the old session", r.Data)
	}
}

func TestTouchDeleteAndScanSpanBothStores(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	exp := time.Now().Add(time.Hour)
	for _, id := range []string{"o1", "o2", "both"} {
		if _, err := f.old.Save(ctx, id, handlers.Record{Data: []byte("old " + id), Expires: exp}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"n1", "both"} {
		if _, err := f.new.Save(ctx, id, handlers.Record{Data: []byte("new " + id), Expires: exp}, 0); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	if err := f.s.Scan(ctx, func(id string, _ time.Time) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	if got := len(ids); got != 4 || ids[0] != "both" || ids[1] != "n1" || ids[2] != "o1" || ids[3] != "o2" {
		t.Fatalf("Scan = %v, want both,n1,o1,o2 once each", ids)
	}
	if r, _ := f.s.Load(ctx, "both"); string(r.Data) != "new both" {
		t.Fatalf("new must win over old, Load = %q", r.Data)
	}

	later := time.Now().Add(3 * time.Hour)
	if err := f.s.Touch(ctx, "o1", later); err != nil {
		t.Fatalf("Touch of a session only in old: %v", err)
	}
	if r, err := f.new.Load(ctx, "o1"); err != nil || !r.Expires.Equal(later) {
		t.Fatalf("after Touch, new has %+v, %v", r, err)
	}
	if err := f.s.Touch(ctx, "nope", later); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("Touch missing = %v", err)
	}

	if ok, err := f.s.Delete(ctx, "o2"); err != nil || !ok {
		t.Fatalf("Delete of an old-only session = %v, %v", ok, err)
	}
	if ok, err := f.s.Delete(ctx, "o1"); err != nil || !ok {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	for _, id := range []string{"o1", "o2"} {
		if _, err := f.s.Load(ctx, id); !errors.Is(err, handlers.ErrNotFound) {
			t.Fatalf("deleted %s came back: %v", id, err)
		}
		if _, err := f.old.Load(ctx, id); !errors.Is(err, handlers.ErrNotFound) {
			t.Fatalf("deleted %s still in old: %v", id, err)
		}
	}
}

func TestAfterUntilOldIsIgnored(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	if _, err := f.old.Save(ctx, "late", handlers.Record{Data: []byte("x")}, 0); err != nil {
		t.Fatal(err)
	}
	f.advance(2 * time.Hour)
	if _, err := f.s.Load(ctx, "late"); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("Load after the cut-over = %v, want ErrNotFound", err)
	}
	if _, err := f.s.Save(ctx, "late", handlers.Record{Data: []byte("y")}, 0); err != nil {
		t.Fatalf("creating after the cut-over: %v", err)
	}
	if ok, err := f.s.Delete(ctx, "late"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := f.old.Load(ctx, "late"); err != nil {
		t.Fatalf("Delete after the cut-over touched old: %v", err)
	}
	n := 0
	_ = f.s.Scan(ctx, func(string, time.Time) error { n++; return nil })
	if n != 0 {
		t.Fatalf("Scan after the cut-over saw %d sessions of old", n)
	}
}

// Many first reads of one old session race to copy it: exactly one copy
// wins and every reader ends up with new's version.
func TestConcurrentFirstReads(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	if _, err := f.old.Save(ctx, "hot", handlers.Record{Data: []byte("h"), Expires: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	versions := make([]uint64, 16)
	errs := make([]error, 16)
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.s.Load(ctx, "hot")
			versions[i], errs[i] = r.Version, err
		}()
	}
	wg.Wait()
	for i := range versions {
		if errs[i] != nil || versions[i] != versions[0] {
			t.Fatalf("reader %d: version %d, %v; reader 0 got %d", i, versions[i], errs[i], versions[0])
		}
	}
	if f.s.Copied() != 1 {
		t.Fatalf("copied %d times", f.s.Copied())
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	for _, bad := range []string{
		"migrating://",
		"migrating://?old=" + url.QueryEscape(memURL) + "&until=2030-01-01T00:00:00Z",
		"migrating://?old=" + url.QueryEscape(memURL) + "&new=" + url.QueryEscape(memURL) + "&until=2030-01-01T00:00:00Z",
		"migrating://?old=" + url.QueryEscape(memURL) + "&new=nope%3A%2F%2F&until=2030-01-01T00:00:00Z",
		"migrating://?old=" + url.QueryEscape(memURL) + "&new=memory%3A%2F%2F&until=tomorrow",
		migratingURL(memURL, "memory://", until) + "&extra=1",
		"migrating://host/?old=a&new=b&until=2030-01-01T00:00:00Z",
	} {
		if s, err := handlers.Open(ctx, bad); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	if _, err := New(nil, nil, until); err == nil {
		t.Error("New(nil, nil) succeeded")
	}
}

// TestOpenByURLOverPHPFiles: the URL form with escaped nested URLs that
// carry their own options, over a directory laid out as PHP's files
// handler leaves it (no phpsessd sidecar: expiry is mtime + ttl).
func TestOpenByURLOverPHPFiles(t *testing.T) {
	dir := t.TempDir()
	data := []byte("user|s:5:\"alice\";bin|s:3:\"x\x00y\";")
	path := filepath.Join(dir, "sess_phpold1")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now().Add(-100 * time.Second)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	s, err := handlers.Open(context.Background(),
		migratingURL("files://"+filepath.ToSlash(dir)+"?ttl=600", memURL, time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := ctxT(t)
	rec, err := s.Load(ctx, "phpold1")
	if err != nil || string(rec.Data) != string(data) {
		t.Fatalf("Load = %q, %v", rec.Data, err)
	}
	if d := rec.Expires.Sub(mtime.Add(600 * time.Second)); d < -time.Second || d > time.Second {
		t.Fatalf("expires %v, want mtime + ttl = %v", rec.Expires, mtime.Add(600*time.Second))
	}
	m := s.(*Store)
	if got, err := m.New().Load(ctx, "phpold1"); err != nil || !got.Expires.Equal(rec.Expires) {
		t.Fatalf("copy in new = %+v, %v", got, err)
	}
	// The old file stays for PHP workers not yet switched over.
	if b, err := os.ReadFile(path); err != nil || string(b) != string(data) {
		t.Fatalf("old file changed: %q, %v", b, err)
	}
}
