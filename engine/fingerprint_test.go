package engine

import (
	"errors"
	"strings"
	"sync"
	"testing"
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
