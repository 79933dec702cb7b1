package memory

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/storetest"
)

func TestStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) handlers.Store {
		s, err := handlers.Open(context.Background(), "memory://?max_entries=10000&max_bytes=67108864")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOptions(t *testing.T) {
	for _, bad := range []string{
		"memory://?max_entries=0", "memory://?max_entries=x", "memory://?max_bytes=-1", "memory://?size=1",
	} {
		if _, err := handlers.Open(context.Background(), bad); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", bad)
		}
	}
}

func TestBoundedByEntries(t *testing.T) {
	ctx := context.Background()
	s, err := New(Options{MaxEntries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 5; i++ {
		if _, err := s.Save(ctx, fmt.Sprint("id", i), handlers.Record{Data: []byte("x")}, 0); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			// Reading id0 makes it recent, so id1 is evicted first.
			if _, err := s.Load(ctx, "id0"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	for id, want := range map[string]bool{"id0": true, "id1": false, "id2": false, "id3": true, "id4": true} {
		_, err := s.Load(ctx, id)
		if (err == nil) != want {
			t.Errorf("Load(%s) = %v, want present=%v", id, err, want)
		}
	}
}

func TestBoundedByBytes(t *testing.T) {
	ctx := context.Background()
	per := int64(EntryOverhead + 3 + 100)
	s, err := New(Options{MaxBytes: 4 * per})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, 100)
	for i := 0; i < 10; i++ {
		if _, err := s.Save(ctx, fmt.Sprint("id", i), handlers.Record{Data: data}, 0); err != nil {
			t.Fatal(err)
		}
		if s.Bytes() > 4*per {
			t.Fatalf("Bytes = %d over the %d budget", s.Bytes(), 4*per)
		}
	}
	if s.Len() != 4 || s.Bytes() != 4*per {
		t.Fatalf("Len = %d Bytes = %d, want 4 and %d", s.Len(), s.Bytes(), 4*per)
	}
	// Replacing a record re-accounts its size.
	rec, err := s.Load(ctx, "id9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, "id9", handlers.Record{Data: []byte("small")}, rec.Version); err != nil {
		t.Fatal(err)
	}
	if s.Bytes() != 3*per+EntryOverhead+3+5 {
		t.Fatalf("Bytes = %d after shrinking a record", s.Bytes())
	}
	if _, err := s.Save(ctx, "huge", handlers.Record{Data: make([]byte, 5*per)}, 0); err == nil {
		t.Fatal("Save of a record larger than max_bytes succeeded")
	}
	if _, err := s.Sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil || s.Bytes() != 0 {
		t.Fatalf("Close = %v, Bytes after Close = %d", err, s.Bytes())
	}
}

func TestVersionsNeverRepeat(t *testing.T) {
	ctx := context.Background()
	s, _ := New(Options{})
	defer s.Close()
	seen := map[uint64]bool{}
	var v uint64
	for i := 0; i < 100; i++ {
		var err error
		// Same bytes every time: versions still change (counter, not hash).
		if v, err = s.Save(ctx, "a", handlers.Record{Data: []byte("same")}, v); err != nil {
			t.Fatal(err)
		}
		if seen[v] {
			t.Fatalf("version %d repeated", v)
		}
		seen[v] = true
	}
	if ok, _ := s.Delete(ctx, "a"); !ok {
		t.Fatal("Delete failed")
	}
	v2, err := s.Save(ctx, "a", handlers.Record{Data: []byte("same")}, 0)
	if err != nil || seen[v2] {
		t.Fatalf("re-created session got version %d (%v), seen before: %v", v2, err, seen[v2])
	}
}

// perSession fills a fresh store with n sessions of size bytes and returns
// the live heap growth per session.
func perSession(tb testing.TB, n, size int) float64 {
	ctx := context.Background()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i*2654435761)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := New(Options{MaxEntries: n, MaxBytes: int64(n) * int64(size+1024)})
	if err != nil {
		tb.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for _, id := range ids {
		if _, err := s.Save(ctx, id, handlers.Record{Data: payload, Expires: exp}, 0); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	runtime.KeepAlive(ids)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// BenchmarkMemoryPerSession measures heap per session for 100k sessions of
// 1 KB; the target is at most 1.3 × payload + 256 B.
func BenchmarkMemoryPerSession(b *testing.B) {
	var per float64
	for i := 0; i < b.N; i++ {
		per = perSession(b, 100_000, 1024)
	}
	b.ReportMetric(per, "B/session")
	b.ReportMetric(1.3*1024+256, "budget-B/session")
}

func TestMemoryPerSessionBudget(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	per := perSession(t, n, 1024)
	t.Logf("%.0f B/session for %d sessions of 1 KB", per, n)
	if budget := 1.3*1024 + 256; per > budget {
		t.Fatalf("%.0f B/session, budget %.0f", per, budget)
	}
}

// Deadlines are kept on the monotonic clock, but an expiry may come
// without a monotonic reading (parsed, or from another store's record):
// such times are placed by the wall clock, before and after the epoch.
func TestExpiryWithoutMonotonicReading(t *testing.T) {
	ctx := context.Background()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wall := func(d time.Duration) time.Time { return time.Now().Add(d).Round(0) }
	for _, c := range []struct {
		id      string
		expires time.Time
		live    bool
	}{
		{"wallpast0000000000000000000000001", wall(-time.Hour), false},
		{"wallpastepoch00000000000000000001", time.Unix(1, 0), false},
		{"wallfuture00000000000000000000001", wall(time.Hour), true},
		{"never0000000000000000000000000001", time.Time{}, true},
	} {
		if _, err := s.Save(ctx, c.id, handlers.Record{Data: []byte("a|i:1;"), Expires: c.expires}, 0); err != nil {
			t.Fatalf("save %s: %v", c.id, err)
		}
		rec, err := s.Load(ctx, c.id)
		if !c.live {
			if !errors.Is(err, handlers.ErrNotFound) {
				t.Errorf("load %s expiring %v: %v, want ErrNotFound", c.id, c.expires, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("load %s: %v", c.id, err)
		}
		if c.expires.IsZero() != rec.Expires.IsZero() || rec.Expires.Sub(c.expires).Abs() > time.Millisecond {
			t.Errorf("load %s: expires %v, saved %v", c.id, rec.Expires, c.expires)
		}
	}
	// A sweep at a wall-only time an hour and a half ahead removes the
	// record saved for an hour and keeps the one that never expires.
	n, err := s.Sweep(ctx, wall(90*time.Minute))
	if err != nil || n != 1 {
		t.Errorf("sweep: removed %d, %v; want 1", n, err)
	}
}
