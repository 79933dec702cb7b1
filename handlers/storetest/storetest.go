// Package storetest is the conformance suite every handlers.Store backend
// runs from its own tests: round trips of binary and large data,
// compare-and-swap (including many goroutines racing on one id), touch,
// delete, expiry and sweep, scan, metadata, cancelled contexts, hostile ids
// and close. Keeping one suite means a new backend (Redis, ...) is held to
// exactly the guarantees the engine relies on. Ids carry a random prefix so
// backends shared between test runs do not collide; expiry checks use short
// real durations so the suite stays fast.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
)

// Options adapt the suite to a backend's documented behaviour.
type Options struct {
	// NativeExpiry: the backend expires records itself, so Sweep may
	// return 0 instead of counting what it removed.
	NativeExpiry bool
	// ExpiresTolerance is how far a loaded Expires may be from the one
	// saved (backends that store coarse timestamps). Default 1 s.
	ExpiresTolerance time.Duration
}

// Run runs the whole suite with default Options. open must return a fresh,
// empty-enough store for each call; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) handlers.Store) {
	RunWith(t, open, Options{})
}

// RunWith runs the whole suite with the given Options.
func RunWith(t *testing.T, open func(t *testing.T) handlers.Store, o Options) {
	if o.ExpiresTolerance == 0 {
		o.ExpiresTolerance = time.Second
	}
	h := &harness{open: open, o: o}
	tests := []struct {
		name string
		fn   func(t *testing.T, s handlers.Store)
	}{
		{"LoadMissing", h.loadMissing},
		{"RoundTrip", h.roundTrip},
		{"NoAliasing", h.noAliasing},
		{"CompareAndSwap", h.compareAndSwap},
		{"ConcurrentCAS", h.concurrentCAS},
		{"Touch", h.touch},
		{"Delete", h.delete},
		{"Expiry", h.expiry},
		{"Sweep", h.sweep},
		{"Scan", h.scan},
		{"Meta", h.meta},
		{"ContextCancelled", h.ctxCancelled},
		{"InvalidIDs", h.invalidIDs},
		{"Close", h.close},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					_ = s.Close()
				}
			})
			if tc.name == "Close" {
				closed = true
			}
			tc.fn(t, s)
		})
	}
}

type harness struct {
	open func(t *testing.T) handlers.Store
	o    Options
}

// newID returns an id unique to this run, in PHP's session id alphabet.
func newID(t *testing.T, tag string) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "st" + hex.EncodeToString(b[:]) + "-" + tag
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (h *harness) mustSave(t *testing.T, s handlers.Store, id string, rec handlers.Record, expect uint64) uint64 {
	t.Helper()
	v, err := s.Save(ctxT(t), id, rec, expect)
	if err != nil {
		t.Fatalf("Save(%s, expect %d): %v", id, expect, err)
	}
	if v == 0 {
		t.Fatalf("Save(%s) returned version 0", id)
	}
	return v
}

func (h *harness) mustLoad(t *testing.T, s handlers.Store, id string) handlers.Record {
	t.Helper()
	rec, err := s.Load(ctxT(t), id)
	if err != nil {
		t.Fatalf("Load(%s): %v", id, err)
	}
	return rec
}

func (h *harness) wantMissing(t *testing.T, s handlers.Store, id string) {
	t.Helper()
	rec, err := s.Load(ctxT(t), id)
	if !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("Load(%s) = %q v%d, %v; want ErrNotFound", id, rec.Data, rec.Version, err)
	}
}

func (h *harness) wantExpires(t *testing.T, got, want time.Time) {
	t.Helper()
	if want.IsZero() || got.IsZero() {
		if !want.IsZero() || !got.IsZero() {
			t.Fatalf("Expires = %v, want %v", got, want)
		}
		return
	}
	if d := got.Sub(want); d > h.o.ExpiresTolerance || d < -h.o.ExpiresTolerance {
		t.Fatalf("Expires = %v, want %v (±%v)", got, want, h.o.ExpiresTolerance)
	}
}

func (h *harness) loadMissing(t *testing.T, s handlers.Store) {
	h.wantMissing(t, s, newID(t, "missing"))
	if ok, err := s.Delete(ctxT(t), newID(t, "missing")); ok || err != nil {
		t.Fatalf("Delete(missing) = %v, %v; want false, nil", ok, err)
	}
}

func (h *harness) roundTrip(t *testing.T, s handlers.Store) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	large := make([]byte, 1<<20)
	if _, err := rand.Read(large); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":  {},
		"php":    []byte(`user|a:2:{s:2:"id";i:42;s:4:"name";s:5:"Alice";}cart|a:0:{}`),
		"binary": append([]byte("nul\x00inside\x00"), all...),
		"large":  large,
	}
	exp := time.Now().Add(time.Hour)
	for name, data := range cases {
		id := newID(t, name)
		v := h.mustSave(t, s, id, handlers.Record{Data: data, Expires: exp, Version: 777}, 0)
		rec := h.mustLoad(t, s, id)
		if !bytes.Equal(rec.Data, data) {
			t.Fatalf("%s: loaded %d bytes, want %d identical bytes", name, len(rec.Data), len(data))
		}
		if rec.Version != v {
			t.Fatalf("%s: loaded version %d, Save returned %d", name, rec.Version, v)
		}
		h.wantExpires(t, rec.Expires, exp)
	}
	// A record without expiry never expires.
	id := newID(t, "forever")
	h.mustSave(t, s, id, handlers.Record{Data: []byte("x|i:1;")}, 0)
	if rec := h.mustLoad(t, s, id); !rec.Expires.IsZero() {
		t.Fatalf("Expires = %v for a record saved without expiry, want zero", rec.Expires)
	}
}

func (h *harness) noAliasing(t *testing.T, s handlers.Store) {
	id := newID(t, "alias")
	in := []byte("a|s:3:\"abc\";")
	meta := []byte("meta")
	h.mustSave(t, s, id, handlers.Record{Data: in, Meta: meta, Expires: time.Now().Add(time.Hour)}, 0)
	in[0], meta[0] = 'X', 'X'
	rec := h.mustLoad(t, s, id)
	if string(rec.Data) != "a|s:3:\"abc\";" || string(rec.Meta) != "meta" {
		t.Fatalf("store kept the caller's buffers: %q %q", rec.Data, rec.Meta)
	}
	rec.Data[0], rec.Meta[0] = 'Y', 'Y'
	rec = h.mustLoad(t, s, id)
	if string(rec.Data) != "a|s:3:\"abc\";" || string(rec.Meta) != "meta" {
		t.Fatalf("store handed out its own buffers: %q %q", rec.Data, rec.Meta)
	}
}

func (h *harness) compareAndSwap(t *testing.T, s handlers.Store) {
	ctx := ctxT(t)
	id := newID(t, "cas")
	exp := time.Now().Add(time.Hour)
	if _, err := s.Save(ctx, id, handlers.Record{Data: []byte("a"), Expires: exp}, 12345); !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save(absent, expect 12345) = %v, want ErrVersionMismatch", err)
	}
	h.wantMissing(t, s, id)

	v1 := h.mustSave(t, s, id, handlers.Record{Data: []byte("one"), Expires: exp}, 0)
	if _, err := s.Save(ctx, id, handlers.Record{Data: []byte("two"), Expires: exp}, 0); !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save(existing, expect 0) = %v, want ErrVersionMismatch", err)
	}
	if _, err := s.Save(ctx, id, handlers.Record{Data: []byte("two"), Expires: exp}, v1^0x5a5a); !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save(wrong version) = %v, want ErrVersionMismatch", err)
	}
	if rec := h.mustLoad(t, s, id); string(rec.Data) != "one" || rec.Version != v1 {
		t.Fatalf("a failed CAS changed the record: %q v%d", rec.Data, rec.Version)
	}
	v2 := h.mustSave(t, s, id, handlers.Record{Data: []byte("two"), Expires: exp}, v1)
	if v2 == v1 {
		t.Fatalf("version did not change when the data changed: %d", v2)
	}
	if _, err := s.Save(ctx, id, handlers.Record{Data: []byte("three"), Expires: exp}, v1); !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save(stale version) = %v, want ErrVersionMismatch", err)
	}
	if rec := h.mustLoad(t, s, id); string(rec.Data) != "two" || rec.Version != v2 {
		t.Fatalf("Load = %q v%d, want \"two\" v%d", rec.Data, rec.Version, v2)
	}
}

func (h *harness) concurrentCAS(t *testing.T, s handlers.Store) {
	const workers, perWorker = 50, 2
	ctx := ctxT(t)
	id := newID(t, "race")
	exp := time.Now().Add(time.Hour)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions = map[uint64]int{}
		errs     = make(chan error, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				for attempt := 0; ; attempt++ {
					if attempt > 10000 {
						errs <- errors.New("no progress after 10000 attempts")
						return
					}
					var n int
					var expect uint64
					rec, err := s.Load(ctx, id)
					switch {
					case errors.Is(err, handlers.ErrNotFound):
					case err != nil:
						errs <- err
						return
					default:
						if n, err = strconv.Atoi(string(rec.Data)); err != nil {
							errs <- fmt.Errorf("corrupt counter %q", rec.Data)
							return
						}
						expect = rec.Version
					}
					v, err := s.Save(ctx, id, handlers.Record{Data: []byte(strconv.Itoa(n + 1)), Expires: exp}, expect)
					if errors.Is(err, handlers.ErrVersionMismatch) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					versions[v]++
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rec := h.mustLoad(t, s, id)
	if string(rec.Data) != strconv.Itoa(workers*perWorker) {
		t.Fatalf("counter = %s, want %d: increments were lost", rec.Data, workers*perWorker)
	}
	if len(versions) != workers*perWorker {
		t.Fatalf("%d distinct versions for %d successful saves", len(versions), workers*perWorker)
	}
}

func (h *harness) touch(t *testing.T, s handlers.Store) {
	ctx := ctxT(t)
	if err := s.Touch(ctx, newID(t, "absent"), time.Now().Add(time.Hour)); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("Touch(absent) = %v, want ErrNotFound", err)
	}
	id := newID(t, "touch")
	v := h.mustSave(t, s, id, handlers.Record{Data: []byte("t|b:1;"), Meta: []byte("m"), Expires: time.Now().Add(time.Minute)}, 0)
	later := time.Now().Add(2 * time.Hour)
	if err := s.Touch(ctx, id, later); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	rec := h.mustLoad(t, s, id)
	if rec.Version != v || string(rec.Data) != "t|b:1;" || string(rec.Meta) != "m" {
		t.Fatalf("Touch changed the record: %q %q v%d (want v%d)", rec.Data, rec.Meta, rec.Version, v)
	}
	h.wantExpires(t, rec.Expires, later)
	// The version is still the one CAS expects.
	h.mustSave(t, s, id, handlers.Record{Data: []byte("t|b:0;"), Expires: later}, v)
	// Touching into the past ends the session.
	if err := s.Touch(ctx, id, time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("Touch(past): %v", err)
	}
	h.wantMissing(t, s, id)
}

func (h *harness) delete(t *testing.T, s handlers.Store) {
	ctx := ctxT(t)
	id := newID(t, "del")
	v := h.mustSave(t, s, id, handlers.Record{Data: []byte("d"), Expires: time.Now().Add(time.Hour)}, 0)
	if ok, err := s.Delete(ctx, id); !ok || err != nil {
		t.Fatalf("Delete(existing) = %v, %v; want true, nil", ok, err)
	}
	h.wantMissing(t, s, id)
	if ok, err := s.Delete(ctx, id); ok || err != nil {
		t.Fatalf("second Delete = %v, %v; want false, nil", ok, err)
	}
	if _, err := s.Save(ctx, id, handlers.Record{Data: []byte("e")}, v); !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save(deleted, old version) = %v, want ErrVersionMismatch", err)
	}
	h.mustSave(t, s, id, handlers.Record{Data: []byte("e"), Expires: time.Now().Add(time.Hour)}, 0)
}

func (h *harness) expiry(t *testing.T, s handlers.Store) {
	ctx := ctxT(t)
	past := newID(t, "past")
	h.mustSave(t, s, past, handlers.Record{Data: []byte("old"), Expires: time.Now().Add(-time.Second)}, 0)
	h.wantMissing(t, s, past)
	if err := s.Touch(ctx, past, time.Now().Add(time.Hour)); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("Touch(expired) = %v, want ErrNotFound", err)
	}
	// An expired record counts as absent for compare-and-swap.
	v := h.mustSave(t, s, past, handlers.Record{Data: []byte("new"), Expires: time.Now().Add(time.Hour)}, 0)
	if rec := h.mustLoad(t, s, past); string(rec.Data) != "new" || rec.Version != v {
		t.Fatalf("Load = %q v%d after re-creating an expired session", rec.Data, rec.Version)
	}

	soon := newID(t, "soon")
	h.mustSave(t, s, soon, handlers.Record{Data: []byte("s"), Expires: time.Now().Add(700 * time.Millisecond)}, 0)
	h.mustLoad(t, s, soon)
	time.Sleep(900 * time.Millisecond)
	h.wantMissing(t, s, soon)
	if _, err := s.Save(ctx, soon, handlers.Record{Data: []byte("s2")}, v); !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save(expired, some version) = %v, want ErrVersionMismatch", err)
	}
}

func (h *harness) sweep(t *testing.T, s handlers.Store) {
	ctx := ctxT(t)
	now := time.Now()
	var dead, alive []string
	for i := 0; i < 3; i++ {
		id := newID(t, "dead"+strconv.Itoa(i))
		h.mustSave(t, s, id, handlers.Record{Data: []byte("x"), Expires: now.Add(-time.Duration(i+1) * time.Second)}, 0)
		dead = append(dead, id)
	}
	for i := 0; i < 2; i++ {
		id := newID(t, "alive"+strconv.Itoa(i))
		h.mustSave(t, s, id, handlers.Record{Data: []byte("y"), Expires: now.Add(time.Hour)}, 0)
		alive = append(alive, id)
	}
	forever := newID(t, "forever")
	h.mustSave(t, s, forever, handlers.Record{Data: []byte("z")}, 0)
	alive = append(alive, forever)

	n, err := s.Sweep(ctx, time.Now())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if !(n == len(dead) || h.o.NativeExpiry && n == 0) {
		t.Fatalf("Sweep removed %d, want %d", n, len(dead))
	}
	for _, id := range dead {
		h.wantMissing(t, s, id)
	}
	for _, id := range alive {
		h.mustLoad(t, s, id)
	}
	if n, err := s.Sweep(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0, nil", n, err)
	}
	// Sweep's clock is the argument: sweeping "in two hours" removes the
	// hour-long sessions but never the ones without expiry.
	n, err = s.Sweep(ctx, time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatalf("Sweep(+2h): %v", err)
	}
	if !h.o.NativeExpiry && n != 2 {
		t.Fatalf("Sweep(+2h) removed %d, want 2", n)
	}
	h.mustLoad(t, s, forever)
}

func (h *harness) scan(t *testing.T, s handlers.Store) {
	ctx := ctxT(t)
	prefix := newID(t, "scan")
	exp := time.Now().Add(time.Hour)
	want := map[string]time.Time{}
	for i := 0; i < 5; i++ {
		id := prefix + strconv.Itoa(i)
		h.mustSave(t, s, id, handlers.Record{Data: []byte("x"), Expires: exp.Add(time.Duration(i) * time.Minute)}, 0)
		want[id] = exp.Add(time.Duration(i) * time.Minute)
	}
	forever := prefix + "f"
	h.mustSave(t, s, forever, handlers.Record{Data: []byte("x")}, 0)
	want[forever] = time.Time{}
	h.mustSave(t, s, prefix+"expired", handlers.Record{Data: []byte("x"), Expires: time.Now().Add(-time.Second)}, 0)
	h.mustSave(t, s, prefix+"deleted", handlers.Record{Data: []byte("x"), Expires: exp}, 0)
	if _, err := s.Delete(ctx, prefix+"deleted"); err != nil {
		t.Fatal(err)
	}

	got := map[string]time.Time{}
	err := s.Scan(ctx, func(id string, expires time.Time) error {
		if strings.HasPrefix(id, prefix) {
			if _, dup := got[id]; dup {
				return fmt.Errorf("id %s reported twice", id)
			}
			got[id] = expires
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(got) != len(want) {
		ids := make([]string, 0, len(got))
		for id := range got {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		t.Fatalf("Scan saw %v, want the %d live ids", ids, len(want))
	}
	for id, exp := range want {
		g, ok := got[id]
		if !ok {
			t.Fatalf("Scan missed %s", id)
		}
		h.wantExpires(t, g, exp)
	}

	stop := errors.New("stop")
	calls := 0
	err = s.Scan(ctx, func(string, time.Time) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Scan with failing fn = %v after %d calls, want the fn's error after 1", err, calls)
	}
	// fn may call back into the store without deadlocking.
	err = s.Scan(ctx, func(id string, _ time.Time) error {
		if strings.HasPrefix(id, prefix) {
			_, err := s.Load(ctx, id)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Scan with a re-entrant fn: %v", err)
	}
}

func (h *harness) meta(t *testing.T, s handlers.Store) {
	id := newID(t, "meta")
	exp := time.Now().Add(time.Hour)
	meta := []byte("\x00\x01format=php;alias=\xff")
	v := h.mustSave(t, s, id, handlers.Record{Data: []byte("m|i:1;"), Meta: meta, Expires: exp}, 0)
	if rec := h.mustLoad(t, s, id); !bytes.Equal(rec.Meta, meta) {
		t.Fatalf("Meta = %q, want %q", rec.Meta, meta)
	}
	h.mustSave(t, s, id, handlers.Record{Data: []byte("m|i:2;"), Expires: exp}, v)
	if rec := h.mustLoad(t, s, id); len(rec.Meta) != 0 {
		t.Fatalf("Meta = %q after saving without meta, want empty", rec.Meta)
	}
}

func (h *harness) ctxCancelled(t *testing.T, s handlers.Store) {
	id := newID(t, "ctx")
	v := h.mustSave(t, s, id, handlers.Record{Data: []byte("c"), Expires: time.Now().Add(time.Hour)}, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want an error wrapping context.Canceled", op, err)
		}
	}
	_, err := s.Load(ctx, id)
	check("Load", err)
	_, err = s.Save(ctx, id, handlers.Record{Data: []byte("d")}, v)
	check("Save", err)
	check("Touch", s.Touch(ctx, id, time.Now().Add(time.Hour)))
	_, err = s.Delete(ctx, id)
	check("Delete", err)
	check("Scan", s.Scan(ctx, func(string, time.Time) error { return nil }))
	_, err = s.Sweep(ctx, time.Now())
	check("Sweep", err)
	if rec := h.mustLoad(t, s, id); string(rec.Data) != "c" || rec.Version != v {
		t.Fatalf("a cancelled call changed the record: %q v%d", rec.Data, rec.Version)
	}
}

// InvalidIDs lists ids every store must refuse: they could escape a
// namespace (paths, keys) or are not PHP session ids at all.
var InvalidIDs = []string{"", ".", "..", "../etc/passwd", "a/b", "/abs", `a\b`, "a\x00b", "a b", "a\nb", "sess_a/../../b", "ä"}

func (h *harness) invalidIDs(t *testing.T, s handlers.Store) {
	ctx := ctxT(t)
	for _, id := range InvalidIDs {
		if _, err := s.Load(ctx, id); err == nil || errors.Is(err, handlers.ErrNotFound) {
			t.Errorf("Load(%q) = %v, want a refusal", id, err)
		}
		if _, err := s.Save(ctx, id, handlers.Record{Data: []byte("x")}, 0); err == nil {
			t.Errorf("Save(%q) succeeded, want a refusal", id)
		}
		if err := s.Touch(ctx, id, time.Now()); err == nil || errors.Is(err, handlers.ErrNotFound) {
			t.Errorf("Touch(%q) = %v, want a refusal", id, err)
		}
		if _, err := s.Delete(ctx, id); err == nil {
			t.Errorf("Delete(%q) succeeded, want a refusal", id)
		}
	}
}

func (h *harness) close(t *testing.T, s handlers.Store) {
	id := newID(t, "close")
	h.mustSave(t, s, id, handlers.Record{Data: []byte("c"), Expires: time.Now().Add(time.Hour)}, 0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Load(ctxT(t), id); err == nil {
		t.Fatal("Load after Close succeeded, want an error")
	}
	if _, err := s.Save(ctxT(t), id, handlers.Record{Data: []byte("d")}, 0); err == nil {
		t.Fatal("Save after Close succeeded, want an error")
	}
	_ = s.Close() // a second Close must not panic
}
