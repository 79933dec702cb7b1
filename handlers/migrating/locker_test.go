package migrating

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/cache"
	"github.com/phpsessd/phpsessd/handlers/memory"
	_ "github.com/phpsessd/phpsessd/handlers/redis"
	"github.com/phpsessd/phpsessd/internal/testserver"
)

// lockerOf finds a store's locker the way the daemon does (serve.go), so
// these tests break if the wrapper stops satisfying that check.
func lockerOf(t *testing.T, st handlers.Store) engine.Locker {
	t.Helper()
	lp, ok := st.(interface{ EngineLocker() engine.Locker })
	if !ok {
		t.Fatalf("%T does not offer EngineLocker", st)
	}
	return lp.EngineLocker()
}

func openT(t *testing.T, rawURL string) handlers.Store {
	t.Helper()
	st, err := handlers.Open(ctxT(t), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// newEngineOver builds an engine as serve does: the store's locker, if it
// offers one, else the engine's own in-process locker.
func newEngineOver(t *testing.T, st handlers.Store) *engine.Engine {
	t.Helper()
	cfg := engine.NewConfig(st)
	if lp, ok := st.(interface{ EngineLocker() engine.Locker }); ok {
		cfg.Locker = lp.EngineLocker()
	}
	cfg.StrictIDs = false
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// Two daemons configured with the same migrating:// URL over a shared
// Redis must exclude each other's locked requests, as they would with
// redis:// alone.
func TestLocksSharedAcrossEnginesWithRedisDestination(t *testing.T) {
	r := testserver.StartRedis(t)
	u := migratingURL(memURL, "redis://"+r.Addr+"/0", time.Now().Add(time.Hour))
	a, b := newEngineOver(t, openT(t, u)), newEngineOver(t, openT(t, u))
	ctx := ctxT(t)
	const id = "migratinglock0123456789abcdef"

	ca, cb := a.NewClient("daemon-a"), b.NewClient("daemon-b")
	defer ca.Close()
	defer cb.Close()
	if res, err := ca.Read(ctx, engine.ReadRequest{ID: id, Mode: engine.ModeLocked, Format: "php"}); err != nil || res.Mode != engine.ModeLocked {
		t.Fatalf("first locked read: %+v %v", res, err)
	}
	start := time.Now()
	_, err := cb.Read(ctx, engine.ReadRequest{ID: id, Mode: engine.ModeLocked, Format: "php", LockWait: 300 * time.Millisecond})
	if !errors.Is(err, engine.ErrLockTimeout) {
		t.Fatalf("second daemon's locked read while the first holds the lock = %v after %v, want ErrLockTimeout", err, time.Since(start))
	}
	if err := ca.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	if res, err := cb.Read(ctx, engine.ReadRequest{ID: id, Mode: engine.ModeLocked, Format: "php", LockWait: 5 * time.Second}); err != nil || res.Mode != engine.ModeLocked {
		t.Fatalf("locked read after release: %+v %v", res, err)
	}
	if err := cb.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// held reports whether id is locked in the store behind plain: a short
// acquire through it times out.
func held(t *testing.T, plain handlers.Store, id string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctxT(t), 150*time.Millisecond)
	defer cancel()
	lk, err := lockerOf(t, plain).Acquire(ctx, id, "probe", time.Minute)
	if err == nil {
		_ = lk.Release()
		return false
	}
	if !errors.Is(err, engine.ErrLockTimeout) {
		t.Fatalf("probe acquire: %v", err)
	}
	return true
}

// The locker comes from new when it has one, else from old, and the
// choice stays the same after the cut-over.
func TestEngineLockerChoice(t *testing.T) {
	r := testserver.StartRedis(t)
	oldURL := "redis://" + r.Addr + "/0?prefix=old:"
	newURL := "redis://" + r.Addr + "/0?prefix=new:"
	oldPlain, newPlain := openT(t, oldURL), openT(t, newURL)
	ctx := ctxT(t)

	for i, tc := range []struct {
		name             string
		old, new         string
		until            time.Time
		inOld, inNew     bool
		noLockerExpected bool
	}{
		{name: "both redis", old: oldURL, new: newURL, until: time.Now().Add(time.Hour), inNew: true},
		{name: "both redis after until", old: oldURL, new: newURL, until: time.Now().Add(-time.Hour), inNew: true},
		{name: "redis new only", old: memURL, new: newURL, until: time.Now().Add(time.Hour), inNew: true},
		{name: "redis old only", old: oldURL, new: memURL, until: time.Now().Add(time.Hour), inOld: true},
		{name: "neither", old: memURL, new: "memory://?max_entries=10001", until: time.Now().Add(time.Hour), noLockerExpected: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lockerOf(t, openT(t, migratingURL(tc.old, tc.new, tc.until)))
			if tc.noLockerExpected {
				if l != nil {
					t.Fatalf("locker %T over stores without one, want nil", l)
				}
				return
			}
			if l == nil {
				t.Fatal("no locker")
			}
			id := "lockchoice" + strconv.Itoa(i)
			lk, err := l.Acquire(ctx, id, "me", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer lk.Release()
			if got := held(t, oldPlain, id); got != tc.inOld {
				t.Errorf("lock held in old = %v, want %v", got, tc.inOld)
			}
			if got := held(t, newPlain, id); got != tc.inNew {
				t.Errorf("lock held in new = %v, want %v", got, tc.inNew)
			}
		})
	}
}

// lockingStore is a store offering a locker of its own, standing in for
// Redis where the test needs no server.
type lockingStore struct {
	handlers.Store
	l engine.Locker
}

func (s lockingStore) EngineLocker() engine.Locker { return s.l }

// The locker is found through the other decorators and through a nested
// migrating store that has none to offer.
func TestEngineLockerThroughDecorators(t *testing.T) {
	mem := func() handlers.Store {
		st, err := memory.New(memory.Options{MaxEntries: 100})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	want := engine.NewMemLocker(nil)
	defer want.Close()
	cached, err := cache.New(lockingStore{mem(), want}, 10)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	inner, err := New(mem(), mem(), until)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cached, inner, until)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := lockerOf(t, s); got != engine.Locker(want) {
		t.Fatalf("locker = %v, want the one behind the cache in old", got)
	}
}
