package engine

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/phpsessd/phpsessd/handlers"
)

const uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

type mismatchLog struct {
	mu      sync.Mutex
	reasons []string
}

func (m *mismatchLog) add(id, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reasons = append(m.reasons, reason)
}

func (m *mismatchLog) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.reasons)
}

// createWith creates a session from a request carrying ua/ip inputs.
func createWith(t *testing.T, e *Engine, r ReadRequest) string {
	t.Helper()
	id, err := e.CreateID(bg, IDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := e.NewClient("creator")
	defer c.Close()
	r.ID, r.Format = id, "php"
	if _, err := c.Read(bg, r); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, id, sess("secret", ps("yes")), 0)
	return id
}

func readWith(e *Engine, id string, r ReadRequest) (ReadResult, error) {
	c := e.NewClient("reader")
	defer c.Close()
	r.ID, r.Format = id, "php"
	return c.Read(bg, r)
}

func TestFingerprint(t *testing.T) {
	var log mismatchLog
	e := newTestEngine(t, func(c *Config) {
		c.FingerprintUA, c.FingerprintIP = true, true
		c.OnFingerprintMismatch = log.add
	})
	id := createWith(t, e, ReadRequest{UA: uaFirefox, HasUA: true, IP: "192.0.2.10"})

	// The meta holds hashes, never the inputs.
	rec, err := e.store.Load(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec.Meta), "Firefox") || strings.Contains(string(rec.Meta), "192.0.2") {
		t.Fatalf("raw fingerprint input stored in meta: %q", rec.Meta)
	}

	ok := []ReadRequest{
		{UA: uaFirefox, HasUA: true, IP: "192.0.2.10"},  // same
		{UA: uaFirefox, HasUA: true, IP: "192.0.2.200"}, // same /24
		{UA: uaFirefox, HasUA: true, IP: "::ffff:192.0.2.7"},
		{}, // an old client without inputs is never refused
		{IP: "192.0.2.1"},
		{UA: uaFirefox, HasUA: true, IP: "not an address"},
	}
	for _, r := range ok {
		res, err := readWith(e, id, r)
		if err != nil || !strings.Contains(string(res.Data), "secret") {
			t.Errorf("read %+v: %v %q", r, err, res.Data)
		}
	}
	bad := []ReadRequest{
		{UA: "curl/8.0", HasUA: true, IP: "192.0.2.10"},
		{UA: "", HasUA: true, IP: "192.0.2.10"}, // an omitted header is a different agent
		{UA: uaFirefox, HasUA: true, IP: "192.0.3.10"},
		{UA: uaFirefox, HasUA: true, IP: "2001:db8::1"},
		{IP: "198.51.100.1"},
	}
	for _, r := range bad {
		res, err := readWith(e, id, r)
		var fe *FingerprintError
		if !errors.Is(err, ErrFingerprint) || !errors.As(err, &fe) || fe.ID != id || res.Data != nil {
			t.Errorf("read %+v: %v, data %q; want a fingerprint refusal", r, err, res.Data)
		}
	}
	if log.count() != len(bad) {
		t.Fatalf("callback saw %d mismatches, want %d", log.count(), len(bad))
	}

	// A locked read that is refused does not keep the lock.
	if _, err := readWith(e, id, ReadRequest{Mode: ModeLocked, UA: "curl", HasUA: true}); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("locked read: %v", err)
	}
	if _, ok := e.LockInfo(id); ok {
		t.Fatal("refused locked read kept the lock")
	}
}

func TestFingerprintIPv6AndPrefixes(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.FingerprintIP = true })
	id := createWith(t, e, ReadRequest{UA: uaFirefox, HasUA: true, IP: "2001:db8:1:2:aaaa::1"})
	if _, err := readWith(e, id, ReadRequest{IP: "2001:db8:1:2:ffff::9", UA: "other", HasUA: true}); err != nil {
		t.Fatalf("same /64 (UA not bound): %v", err)
	}
	if _, err := readWith(e, id, ReadRequest{IP: "2001:db8:1:3::1"}); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("other /64: %v", err)
	}

	narrow := newTestEngine(t, func(c *Config) { c.FingerprintIP, c.FingerprintIPv4Prefix = true, 32 })
	id = createWith(t, narrow, ReadRequest{IP: "203.0.113.5"})
	if _, err := readWith(narrow, id, ReadRequest{IP: "203.0.113.6"}); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("/32 neighbour: %v", err)
	}
}

func TestFingerprintUnboundSessions(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.FingerprintUA, c.FingerprintIP = true, true })
	// Created without inputs: never refused.
	id := createWith(t, e, ReadRequest{})
	for _, r := range []ReadRequest{{UA: "x", HasUA: true, IP: "10.0.0.1"}, {UA: "y", HasUA: true, IP: "::1"}} {
		if _, err := readWith(e, id, r); err != nil {
			t.Fatalf("unbound session refused: %v", err)
		}
	}
	// Created while binding was off: never refused once it is on.
	off := newTestEngine(t, nil)
	id = createWith(t, off, ReadRequest{UA: "a", HasUA: true, IP: "10.0.0.1"})
	rec, _ := off.store.Load(bg, id)
	if m, _ := decodeMeta(rec.Meta); m.FPSalt != nil {
		t.Fatal("fingerprint recorded while binding is off")
	}
}

func TestFingerprintSurvivesWritesAndRegenerate(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.FingerprintUA = true })
	in := ReadRequest{UA: uaFirefox, HasUA: true}
	id := createWith(t, e, in)
	c := e.NewClient("c")
	defer c.Close()
	r := in
	r.ID = id
	if _, err := c.Read(bg, r); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, id, sess("secret", ps("still")), 0)
	if _, err := readWith(e, id, ReadRequest{UA: "curl", HasUA: true}); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("binding lost by a write: %v", err)
	}
	nid, err := c.Regenerate(bg, id, IDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readWith(e, nid, ReadRequest{UA: "curl", HasUA: true}); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("binding lost by regenerate: %v", err)
	}
	if _, err := readWith(e, nid, in); err != nil {
		t.Fatal(err)
	}
}

func TestFingerprintRegenerateMovesOnIPChange(t *testing.T) {
	var log mismatchLog
	e := newTestEngine(t, func(c *Config) {
		c.FingerprintUA, c.FingerprintIP = true, true
		c.FingerprintAction = FingerprintRegenerate
		c.OnFingerprintMismatch = log.add
	})
	home := ReadRequest{UA: uaFirefox, HasUA: true, IP: "10.0.0.1"}
	id := createWith(t, e, home)
	refc := e.NewClient("refs")
	if _, err := refc.AddRef(bg, id, "user:7", false); err != nil {
		t.Fatal(err)
	}
	refc.Close()

	away := ReadRequest{UA: uaFirefox, HasUA: true, IP: "10.9.9.9", Movable: true}
	c := e.NewClient("mobile")
	defer c.Close()
	r := away
	r.ID, r.Format = id, "php"
	res, err := c.Read(bg, r)
	if err != nil {
		t.Fatal(err)
	}
	nid := res.MovedTo
	if nid == "" || nid == id || len(nid) != len(id) {
		t.Fatalf("moved to %q from %q", nid, id)
	}
	if string(res.Data) != sess("secret", ps("yes")) || res.Version == 0 {
		t.Fatalf("moved read: %q v%d", res.Data, res.Version)
	}
	// The old id is gone at once: no record, no alias, nothing to read.
	if _, err := e.store.Load(bg, id); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("old id still stored: %v", err)
	}
	if ok, err := e.ValidateID(bg, id); err != nil || ok {
		t.Fatalf("old id validates: %v %v", ok, err)
	}
	if old, err := readWith(e, id, home); err != nil || old.Version != 0 || old.Data != nil || old.MovedTo != "" {
		t.Fatalf("old id from the old network: %+v %v", old, err)
	}
	// The request goes on under the new id: its write is a plain one.
	w, err := c.Write(bg, WriteRequest{ID: nid, Data: []byte(sess("secret", ps("yes"), "n", "i:1;")), Format: "php"})
	if err != nil || w.Status != StatusWritten {
		t.Fatalf("write under the new id: %+v %v", w, err)
	}
	// The new session is bound to the new network, and its references
	// came along.
	if got, err := readWith(e, nid, ReadRequest{UA: uaFirefox, HasUA: true, IP: "10.9.9.200"}); err != nil ||
		!strings.Contains(string(got.Data), "n|i:1;") || got.MovedTo != "" {
		t.Fatalf("new id from the new network: %q %v", got.Data, err)
	}
	if _, err := readWith(e, nid, ReadRequest{UA: uaFirefox, HasUA: true, IP: "10.0.0.1"}); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("new id from the old network without MOVE: %v", err)
	}
	if ids, err := e.ListRef(bg, "user:7"); err != nil || !slices.Equal(ids, []string{nid}) {
		t.Fatalf("reference index after the move: %q %v", ids, err)
	}
	log.mu.Lock()
	reasons := slices.Clone(log.reasons)
	log.mu.Unlock()
	if len(reasons) != 2 || reasons[0] != FingerprintMovedReason || reasons[1] != "IP prefix changed" {
		t.Fatalf("reported %q", reasons)
	}
}

func TestFingerprintRegenerateRefusesTheRest(t *testing.T) {
	e := newTestEngine(t, func(c *Config) {
		c.FingerprintUA, c.FingerprintIP = true, true
		c.FingerprintAction = FingerprintRegenerate
	})
	id := createWith(t, e, ReadRequest{UA: uaFirefox, HasUA: true, IP: "10.0.0.1"})
	for _, r := range []ReadRequest{
		{UA: "curl/8.0", HasUA: true, IP: "10.0.0.1", Movable: true},   // another browser
		{UA: "curl/8.0", HasUA: true, IP: "10.9.9.9", Movable: true},   // another browser elsewhere
		{IP: "10.9.9.9", Movable: true},                                // the bound agent not vouched for
		{UA: uaFirefox, HasUA: true, IP: "10.9.9.9"},                   // a client that cannot follow
		{UA: uaFirefox, HasUA: true, IP: "10.9.9.9", Mode: ModeLocked}, // same, locked
	} {
		res, err := readWith(e, id, r)
		if !errors.Is(err, ErrFingerprint) || res.MovedTo != "" || res.Data != nil {
			t.Errorf("read %+v: %+v %v; want a refusal", r, res, err)
		}
	}
	if _, ok := e.LockInfo(id); ok {
		t.Fatal("refused locked read kept the lock")
	}
	got, err := readWith(e, id, ReadRequest{UA: uaFirefox, HasUA: true, IP: "10.0.0.1", Movable: true})
	if err != nil || got.MovedTo != "" || string(got.Data) != sess("secret", ps("yes")) {
		t.Fatalf("owner after refusals: %+v %v", got, err)
	}

	// The default action refuses even a client that can follow.
	refuse := newTestEngine(t, func(c *Config) { c.FingerprintIP = true })
	id = createWith(t, refuse, ReadRequest{IP: "10.0.0.1"})
	if _, err := readWith(refuse, id, ReadRequest{IP: "10.9.9.9", Movable: true}); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("action refuse: %v", err)
	}
}

func TestFingerprintRegenerateLockedMove(t *testing.T) {
	e := newTestEngine(t, func(c *Config) {
		c.FingerprintIP = true
		c.FingerprintAction = FingerprintRegenerate
	})
	id := createWith(t, e, ReadRequest{IP: "2001:db8:1:2::1"})
	c := e.NewClient("locked")
	defer c.Close()
	res, err := c.Read(bg, ReadRequest{ID: id, Format: "php", Mode: ModeLocked, IP: "2001:db8:9::1", Movable: true})
	if err != nil || res.MovedTo == "" || res.Mode != ModeLocked {
		t.Fatalf("locked move: %+v %v", res, err)
	}
	if h, ok := e.LockInfo(res.MovedTo); !ok || h.Owner != "locked" {
		t.Fatalf("lock did not move to the new id: %+v %v", h, ok)
	}
	if _, ok := e.LockInfo(id); ok {
		t.Fatal("lock on the old id kept")
	}
	mustWrite(t, c, res.MovedTo, sess("secret", ps("moved")), 0)
	if _, ok := e.LockInfo(res.MovedTo); ok {
		t.Fatal("write did not release the moved lock")
	}
	got, err := readWith(e, res.MovedTo, ReadRequest{IP: "2001:db8:9::7"})
	if err != nil || string(got.Data) != sess("secret", ps("moved")) {
		t.Fatalf("after the locked move: %q %v", got.Data, err)
	}
}

func TestSameShapeID(t *testing.T) {
	for _, tc := range []struct {
		id     string
		length int
		bits   int
	}{
		{"0123456789abcdef0123456789abcdef", 32, 4},
		{"0123456789abcdefghijklmnopqrstuv01", 34, 5},
		{"0123456789abcdefghijklmnopqrstuvwxyzABC,-", 41, 6},
		{"deadbeef", 0, 4},
	} {
		opt := sameShapeID(tc.id, 256)
		if opt.Length != tc.length || opt.BitsPerChar != tc.bits || opt.Grace <= 0 {
			t.Errorf("%s: %+v", tc.id, opt)
		}
	}
}

func TestFingerprintRegenerateParallelMovesOnce(t *testing.T) {
	e := newTestEngine(t, func(c *Config) {
		c.FingerprintUA, c.FingerprintIP = true, true
		c.FingerprintAction = FingerprintRegenerate
	})
	id := createWith(t, e, ReadRequest{UA: uaFirefox, HasUA: true, IP: "10.0.0.1"})
	const n = 8
	var wg sync.WaitGroup
	results := make([]ReadResult, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], errs[i] = readWith(e, id, ReadRequest{UA: uaFirefox, HasUA: true, IP: "10.9.9.9", Movable: true})
		}(i)
	}
	wg.Wait()
	moved := ""
	for i := range results {
		switch {
		case errs[i] == nil && results[i].MovedTo != "":
			if moved != "" {
				t.Fatalf("moved twice: %s and %s", moved, results[i].MovedTo)
			}
			moved = results[i].MovedTo
		case errors.Is(errs[i], ErrFingerprint), errs[i] == nil && results[i].Version == 0:
			// Came after the move: the old id is gone for it.
		default:
			t.Fatalf("parallel read %d: %+v %v", i, results[i], errs[i])
		}
	}
	if moved == "" {
		t.Fatal("nobody moved the session")
	}
	got, err := readWith(e, moved, ReadRequest{UA: uaFirefox, HasUA: true, IP: "10.9.9.9", Movable: true})
	if err != nil || got.MovedTo != "" || string(got.Data) != sess("secret", ps("yes")) {
		t.Fatalf("the id the mover got: %+v %v", got, err)
	}
}
