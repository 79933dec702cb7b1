package sealed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/files"
	"github.com/phpsessd/phpsessd/handlers/memory"
	"github.com/phpsessd/phpsessd/handlers/storetest"
)

func testKey(id string, fill byte) Key {
	k := Key{ID: id}
	for i := range k.Secret {
		k.Secret[i] = fill + byte(i)
	}
	return k
}

func newMem(t *testing.T) *memory.Store { return newMemF(t) }

func newMemF(t testing.TB) *memory.Store {
	t.Helper()
	m, err := memory.New(memory.Options{MaxEntries: 10000, MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustNew(t testing.TB, inner handlers.Store, o Options) *Store {
	t.Helper()
	s, err := New(inner, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

var phpData = []byte(`user|a:2:{s:2:"id";i:42;s:4:"name";s:5:"alice";}cart|a:0:{}`)

func TestStoreSuiteMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) handlers.Store {
		return mustNew(t, newMem(t), Options{Keys: []Key{testKey("k2", 7), testKey("k1", 1)}, CompressOver: 64})
	})
}

func TestStoreSuiteFiles(t *testing.T) {
	storetest.Run(t, func(t *testing.T) handlers.Store {
		fs, err := files.New(files.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return mustNew(t, fs, Options{Keys: []Key{testKey("k1", 1)}, CompressOver: 256})
	})
}

func TestRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte(`s:4:"item";i:1;`), 500)
	for _, o := range []Options{
		{},
		{CompressOver: 100},
		{Keys: []Key{testKey("a", 3)}},
		{Keys: []Key{testKey("a", 3)}, CompressOver: 100},
	} {
		inner := newMem(t)
		s := mustNew(t, inner, o)
		for i, data := range [][]byte{nil, {}, phpData, big, append(magic[:], "custom"...), {0x00, 0x00, 0x00, 0x02, 0x14}} {
			id := "rt" + string(rune('a'+i))
			if _, err := s.Save(ctx(t), id, handlers.Record{Data: data, Meta: []byte("m")}, 0); err != nil {
				t.Fatalf("%+v: save %d: %v", o, i, err)
			}
			got, err := s.Load(ctx(t), id)
			if err != nil {
				t.Fatalf("%+v: load %d: %v", o, i, err)
			}
			if !bytes.Equal(got.Data, data) || string(got.Meta) != "m" {
				t.Fatalf("%+v: data %d: got %q", o, i, got.Data)
			}
			raw, _ := inner.Load(ctx(t), id)
			if len(o.Keys) > 0 && len(data) > 8 && bytes.Contains(raw.Data, data[:8]) {
				t.Errorf("%+v: record %d stored in the clear: %q", o, i, raw.Data)
			}
			if len(o.Keys) == 0 && o.CompressOver == 0 && len(data) > 0 && !isSealed(data) && !bytes.Equal(raw.Data, data) {
				t.Errorf("pass-through store altered plain data %d", i)
			}
		}
	}
}

func TestLegacyPlainLoads(t *testing.T) {
	inner := newMem(t)
	if _, err := inner.Save(ctx(t), "old", handlers.Record{Data: phpData}, 0); err != nil {
		t.Fatal(err)
	}
	s := mustNew(t, inner, Options{Keys: []Key{testKey("k1", 1)}})
	got, err := s.Load(ctx(t), "old")
	if err != nil || !bytes.Equal(got.Data, phpData) {
		t.Fatalf("legacy load: %q, %v", got.Data, err)
	}
	strict := mustNew(t, inner, Options{Keys: []Key{testKey("k1", 1)}, RequireEncrypted: true})
	if _, err := strict.Load(ctx(t), "old"); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("RequireEncrypted: got %v, want ErrNotEncrypted", err)
	}
}

func TestWrongKey(t *testing.T) {
	inner := newMem(t)
	w := mustNew(t, inner, Options{Keys: []Key{testKey("k1", 1)}})
	if _, err := w.Save(ctx(t), "s1", handlers.Record{Data: phpData}, 0); err != nil {
		t.Fatal(err)
	}
	other := mustNew(t, inner, Options{Keys: []Key{testKey("k9", 9)}})
	if _, err := other.Load(ctx(t), "s1"); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("unknown key id: got %v", err)
	}
	sameID := mustNew(t, inner, Options{Keys: []Key{testKey("k1", 99)}})
	if _, err := sameID.Load(ctx(t), "s1"); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong secret: got %v, want ErrAuth", err)
	}
}

func TestRotation(t *testing.T) {
	inner := newMem(t)
	old := mustNew(t, inner, Options{Keys: []Key{testKey("2025", 1)}})
	if _, err := old.Save(ctx(t), "s1", handlers.Record{Data: phpData}, 0); err != nil {
		t.Fatal(err)
	}
	rotated := mustNew(t, inner, Options{Keys: []Key{testKey("2026", 2), testKey("2025", 1)}})
	rec, err := rotated.Load(ctx(t), "s1")
	if err != nil || !bytes.Equal(rec.Data, phpData) {
		t.Fatalf("old key after rotation: %q, %v", rec.Data, err)
	}
	if _, err := rotated.Save(ctx(t), "s1", handlers.Record{Data: phpData}, rec.Version); err != nil {
		t.Fatal(err)
	}
	raw, _ := inner.Load(ctx(t), "s1")
	if kid, _, _ := keyOf(raw.Data); kid != "2026" {
		t.Fatalf("write after rotation used key %q, want 2026", kid)
	}
	if _, err := old.Load(ctx(t), "s1"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old-only store reading new key: %v", err)
	}
}

func TestTamperDetection(t *testing.T) {
	inner := newMem(t)
	s := mustNew(t, inner, Options{Keys: []Key{testKey("k1", 1)}, CompressOver: 10})
	if _, err := s.Save(ctx(t), "victim", handlers.Record{Data: phpData}, 0); err != nil {
		t.Fatal(err)
	}
	raw, _ := inner.Load(ctx(t), "victim")
	h, err := parseHeader(raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func([]byte) []byte{
		"ciphertext bit": func(b []byte) []byte { b[len(b)-20] ^= 1; return b },
		"tag bit":        func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b },
		"nonce bit":      func(b []byte) []byte { b[h.hdrLen-1] ^= 1; return b },
		"zstd flag flip": func(b []byte) []byte { b[5] ^= flagZstd; return b },
		"truncated":      func(b []byte) []byte { return b[:len(b)-1] },
	}
	for name, mut := range cases {
		b := mut(bytes.Clone(raw.Data))
		if _, err := s.open("victim", b); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: got %v, want ErrAuth", name, err)
		}
	}
	// A valid record copied under another session id must not open there.
	if _, err := inner.Save(ctx(t), "attacker", handlers.Record{Data: raw.Data}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx(t), "attacker"); !errors.Is(err, ErrAuth) {
		t.Fatalf("record moved to another id: got %v, want ErrAuth", err)
	}
}

func TestCompressionThreshold(t *testing.T) {
	inner := newMem(t)
	s := mustNew(t, inner, Options{CompressOver: 1000})
	small := bytes.Repeat([]byte("a"), 1000)
	large := bytes.Repeat([]byte("a"), 1001)
	random := make([]byte, 4000)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id         string
		data       []byte
		compressed bool
	}{{"small", small, false}, {"large", large, true}, {"incompressible", random, false}} {
		if _, err := s.Save(ctx(t), c.id, handlers.Record{Data: c.data}, 0); err != nil {
			t.Fatal(err)
		}
		raw, _ := inner.Load(ctx(t), c.id)
		isZ := isSealed(raw.Data) && raw.Data[5]&flagZstd != 0
		if isZ != c.compressed {
			t.Errorf("%s (%d bytes): compressed=%v, want %v", c.id, len(c.data), isZ, c.compressed)
		}
		if !c.compressed && !bytes.Equal(raw.Data, c.data) {
			t.Errorf("%s: below threshold must stay plain PHP bytes", c.id)
		}
		if c.compressed && len(raw.Data) >= len(c.data)/4 {
			t.Errorf("%s: %d bytes compressed to %d", c.id, len(c.data), len(raw.Data))
		}
		got, err := s.Load(ctx(t), c.id)
		if err != nil || !bytes.Equal(got.Data, c.data) {
			t.Fatalf("%s: load: %v", c.id, err)
		}
	}
}

func TestDecompressionBombRefused(t *testing.T) {
	inner := newMem(t)
	w := mustNew(t, inner, Options{CompressOver: 1})
	if _, err := w.Save(ctx(t), "bomb", handlers.Record{Data: make([]byte, 1<<20)}, 0); err != nil {
		t.Fatal(err)
	}
	r := mustNew(t, inner, Options{MaxSize: 64 << 10})
	if _, err := r.Load(ctx(t), "bomb"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
}

func TestCorruptHeader(t *testing.T) {
	s := mustNew(t, newMem(t), Options{Keys: []Key{testKey("k1", 1)}, CompressOver: 1})
	m := string(magic[:])
	for name, raw := range map[string]string{
		"magic only":       m,
		"no flags":         m + "\x01",
		"bad version":      m + "\x02\x00data",
		"unknown flag":     m + "\x01\x04data",
		"no key id length": m + "\x01\x01",
		"zero key id":      m + "\x01\x01\x00" + strings.Repeat("n", 40),
		"long key id":      m + "\x01\x01\x40" + strings.Repeat("n", 100),
		"key id charset":   m + "\x01\x01\x02k/" + strings.Repeat("n", 40),
		"short ciphertext": m + "\x01\x01\x02k1" + strings.Repeat("n", 12+15),
		"bad zstd":         m + "\x01\x02not zstd at all",
	} {
		_, err := s.open("x", []byte(raw))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
	// A prefix of the magic is not the magic: such data is plain.
	if got, err := s.open("x", magic[:3]); err != nil || !bytes.Equal(got, magic[:3]) {
		t.Errorf("partial magic: %q, %v", got, err)
	}
}

func TestParseKeys(t *testing.T) {
	k := testKey("x", 5)
	b64 := base64.StdEncoding.EncodeToString(k.Secret[:])
	keys, err := ParseKeys([]byte("# rotated 2026-11\n\nnew:" + b64 + "\nold:" + base64.RawURLEncoding.EncodeToString(k.Secret[:]) + "\n"))
	if err != nil || len(keys) != 2 || keys[0].ID != "new" || keys[1].Secret != k.Secret {
		t.Fatalf("ParseKeys: %v, %v", keys, err)
	}
	env, err := KeysFromEnv(func(string) string { return "a:" + b64 + ",b:" + b64 })
	if err != nil || len(env) != 2 || env[1].ID != "b" {
		t.Fatalf("KeysFromEnv: %v, %v", env, err)
	}
	if none, err := KeysFromEnv(func(string) string { return "" }); none != nil || err != nil {
		t.Fatalf("unset env: %v, %v", none, err)
	}
	for _, bad := range []string{"", "# only comments", "nocolon", "a:!!!", "a:" + base64.StdEncoding.EncodeToString(make([]byte, 16)), "a b:" + b64, "a:" + b64 + "\na:" + b64} {
		_, err := ParseKeys([]byte(bad))
		if err == nil {
			t.Errorf("ParseKeys(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), b64) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

func TestLoadKeyFile(t *testing.T) {
	k := testKey("x", 5)
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte("k1:"+base64.StdEncoding.EncodeToString(k.Secret[:])+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if keys, err := LoadKeyFile(p); err != nil || len(keys) != 1 {
		t.Fatalf("LoadKeyFile: %v, %v", keys, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(p); err == nil || !strings.Contains(err.Error(), "other users") {
		t.Fatalf("world-readable key file accepted: %v", err)
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	for _, keys := range [][]Key{
		{{ID: "zero"}},
		{testKey("", 1)},
		{testKey("a", 1), testKey("a", 2)},
	} {
		if _, err := New(newMem(t), Options{Keys: keys}); err == nil {
			t.Errorf("New accepted %v", keys[0].ID)
		}
	}
}

// racingStore writes a session behind Reseal's back between its Load and
// its Save, once, to prove the rewrite is a compare-and-swap.
type racingStore struct {
	handlers.Store
	fired atomic.Bool
	write func()
}

func (r *racingStore) Load(ctx context.Context, id string) (handlers.Record, error) {
	rec, err := r.Store.Load(ctx, id)
	if id == "busy" && r.fired.CompareAndSwap(false, true) {
		r.write()
	}
	return rec, err
}

func TestReseal(t *testing.T) {
	mem := newMem(t)
	old := mustNew(t, mem, Options{Keys: []Key{testKey("old", 1)}})
	plainData := []byte("legacy|i:1;")
	if _, err := mem.Save(ctx(t), "plain", handlers.Record{Data: plainData}, 0); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "busy"} {
		if _, err := old.Save(ctx(t), id, handlers.Record{Data: []byte(id + "|i:1;"), Meta: []byte("meta")}, 0); err != nil {
			t.Fatal(err)
		}
	}
	keys := []Key{testKey("new", 2), testKey("old", 1)}
	race := &racingStore{Store: mem}
	s := mustNew(t, race, Options{Keys: keys, RequireEncrypted: true})
	race.write = func() {
		rec, err := s.Load(ctx(t), "busy")
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := s.Save(ctx(t), "busy", handlers.Record{Data: []byte("busy|i:2;"), Meta: rec.Meta}, rec.Version); err != nil {
			t.Error(err)
		}
	}
	if _, err := s.Save(ctx(t), "fresh", handlers.Record{Data: []byte("fresh|i:1;")}, 0); err != nil {
		t.Fatal(err)
	}
	st, err := Reseal(ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	if st.Scanned != 5 || st.Resealed != 3 || st.Current != 2 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	want := map[string]string{"plain": "legacy|i:1;", "a": "a|i:1;", "b": "b|i:1;", "busy": "busy|i:2;", "fresh": "fresh|i:1;"}
	newOnly := mustNew(t, mem, Options{Keys: keys[:1], RequireEncrypted: true})
	for id, data := range want {
		got, err := newOnly.Load(ctx(t), id)
		if err != nil || string(got.Data) != data {
			t.Errorf("%s after reseal: %q, %v (want %q)", id, got.Data, err, data)
		}
		if id == "a" && string(got.Meta) != "meta" {
			t.Errorf("reseal lost meta: %q", got.Meta)
		}
	}
	if _, err := Reseal(ctx(t), mustNew(t, mem, Options{})); err == nil {
		t.Error("Reseal without keys succeeded")
	}
}

// The engine merges on plaintext: two optimistic writers over a sealed
// store keep both keys, and the store below holds no plaintext.
func TestEngineOverSealedStore(t *testing.T) {
	inner := newMem(t)
	s := mustNew(t, inner, Options{Keys: []Key{testKey("k1", 1)}, CompressOver: 32})
	e, err := engine.New(engine.NewConfig(s))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	id, err := e.CreateID(ctx(t), engine.IDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := e.NewClient("a"), e.NewClient("b")
	defer a.Close()
	defer b.Close()
	ra, _ := a.Read(ctx(t), engine.ReadRequest{ID: id, Format: "php"})
	rb, _ := b.Read(ctx(t), engine.ReadRequest{ID: id, Format: "php"})
	if _, err := a.Write(ctx(t), engine.WriteRequest{ID: id, Data: []byte(`cart|s:5:"apple";`), BaseVersion: ra.Version, Format: "php"}); err != nil {
		t.Fatal(err)
	}
	res, err := b.Write(ctx(t), engine.WriteRequest{ID: id, Data: []byte(`user|s:5:"alice";`), BaseVersion: rb.Version, Format: "php"})
	if err != nil || res.Status != engine.StatusMerged {
		t.Fatalf("merge over sealed store: %+v, %v", res, err)
	}
	c := e.NewClient("c")
	defer c.Close()
	got, err := c.Read(ctx(t), engine.ReadRequest{ID: id})
	if err != nil || string(got.Data) != `cart|s:5:"apple";user|s:5:"alice";` {
		t.Fatalf("merged data %q, %v", got.Data, err)
	}
	raw, _ := inner.Load(ctx(t), id)
	if bytes.Contains(raw.Data, []byte("alice")) {
		t.Fatal("plaintext reached the inner store")
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		s := mustNew(t, newMem(t), Options{Keys: []Key{testKey("k", 1)}, CompressOver: 1})
		if _, err := s.Save(ctx(t), "g", handlers.Record{Data: bytes.Repeat([]byte("abc"), 100)}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(ctx(t), "g"); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}
