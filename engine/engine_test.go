package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/memory"
)

// Small builders for PHP serialized values and php-format sessions.
func pi(n int64) string  { return fmt.Sprintf("i:%d;", n) }
func ps(s string) string { return fmt.Sprintf("s:%d:\"%s\";", len(s), s) }
func plist(vals ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "a:%d:{", len(vals))
	for i, v := range vals {
		b.WriteString(pi(int64(i)) + v)
	}
	return b.String() + "}"
}

// pmap takes key, value pairs; keys are string keys.
func pmap(kv ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "a:%d:{", len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		b.WriteString(ps(kv[i]) + kv[i+1])
	}
	return b.String() + "}"
}

// sess builds a php-format session from name, value pairs.
func sess(kv ...string) string {
	var b strings.Builder
	for i := 0; i < len(kv); i += 2 {
		b.WriteString(kv[i] + "|" + kv[i+1])
	}
	return b.String()
}

var bg = context.Background()

func mustRead(t testing.TB, c *Client, id string, mode Mode) ReadResult {
	t.Helper()
	r, err := c.Read(bg, ReadRequest{ID: id, Mode: mode, Format: "php"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustWrite(t testing.TB, c *Client, id, data string, base uint64) WriteResult {
	t.Helper()
	w, err := c.Write(bg, WriteRequest{ID: id, Data: []byte(data), BaseVersion: base, Format: "php"})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func stored(t testing.TB, e *Engine, id string) string {
	t.Helper()
	res, err := e.resolve(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	return string(res.rec.Data)
}

func TestReadWriteLazy(t *testing.T) {
	e := newTestEngine(t, nil)
	c := e.NewClient("c")
	defer c.Close()
	r := mustRead(t, c, "abc", ModeAuto)
	if r.Version != 0 || len(r.Data) != 0 || r.Mode != ModeOptimistic {
		t.Fatalf("new session read %+v", r)
	}
	data := sess("a", pi(1), "b", ps("x"))
	w := mustWrite(t, c, "abc", data, 0)
	if w.Status != StatusWritten || w.Version == 0 {
		t.Fatalf("write %+v", w)
	}
	r = mustRead(t, c, "abc", ModeAuto)
	if string(r.Data) != data || r.Version != w.Version {
		t.Fatalf("read back %+v", r)
	}
	w2 := mustWrite(t, c, "abc", data, r.Version)
	if w2.Status != StatusUnchanged || w2.Version != r.Version {
		t.Fatalf("lazy write %+v", w2)
	}
	if s := e.Stats(); s.Unchanged != 1 || s.Writes != 2 || s.Reads != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestConcurrentDistinctKeysMerge(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.Counters = []string{"n"} })
	setup := e.NewClient("setup")
	mustRead(t, setup, "s1", ModeAuto)
	mustWrite(t, setup, "s1", sess("n", pi(5), "hits", plist(ps("a")), "keep", ps("k")), 0)
	setup.Close()

	a, b := e.NewClient("a"), e.NewClient("b")
	defer a.Close()
	defer b.Close()
	ra := mustRead(t, a, "s1", ModeAuto)
	rb := mustRead(t, b, "s1", ModeAuto)
	wa := mustWrite(t, a, "s1", sess("n", pi(6), "hits", plist(ps("a"), ps("x")), "keep", ps("k"), "fromA", pi(1)), ra.Version)
	wb := mustWrite(t, b, "s1", sess("n", pi(6), "hits", plist(ps("a"), ps("y")), "keep", ps("k"), "fromB", pi(2)), rb.Version)
	if wa.Status != StatusWritten || wb.Status != StatusMerged {
		t.Fatalf("statuses %s %s", wa.Status, wb.Status)
	}
	want := sess("n", pi(7), "hits", plist(ps("a"), ps("x"), ps("y")), "keep", ps("k"), "fromA", pi(1), "fromB", pi(2))
	if got := stored(t, e, "s1"); got != want {
		t.Fatalf("merged\n got %s\nwant %s", got, want)
	}
}

func TestMergeRules(t *testing.T) {
	cases := []struct {
		name               string
		rules              []KeyRule
		base, mine, theirs string
		want               string
		conflict           bool
		conflictPath       string
	}{
		{"untouched returns identical bytes", nil,
			sess("a", pi(1), "b", plist(ps("x"))), sess("a", pi(1), "b", plist(ps("x"))), sess("a", pi(1), "b", plist(ps("x"))),
			sess("a", pi(1), "b", plist(ps("x"))), false, ""},
		{"same key default mine", nil,
			sess("a", pi(1)), sess("a", pi(2)), sess("a", pi(3)), sess("a", pi(2)), false, ""},
		{"same key theirs", []KeyRule{{"a", RuleTheirs}},
			sess("a", pi(1)), sess("a", pi(2)), sess("a", pi(3)), sess("a", pi(3)), false, ""},
		{"same key fail", []KeyRule{{"cart/*", RuleFail}},
			sess("cart", pmap("total", pi(1))), sess("cart", pmap("total", pi(2))), sess("cart", pmap("total", pi(3))), "", true, "cart/total"},
		{"removed by me unchanged by them", nil,
			sess("a", pi(1), "b", pi(2)), sess("a", pi(1)), sess("a", pi(1), "b", pi(2), "c", pi(3)), sess("a", pi(1), "c", pi(3)), false, ""},
		{"removed by me changed by them keeps theirs", nil,
			sess("a", pi(1), "b", pi(2)), sess("a", pi(1)), sess("a", pi(1), "b", pi(9)), sess("a", pi(1), "b", pi(9)), false, ""},
		{"added by both same bytes", nil,
			sess("a", pi(1)), sess("a", pi(1), "x", ps("v")), sess("a", pi(1), "x", ps("v")), sess("a", pi(1), "x", ps("v")), false, ""},
		{"nested recursion", nil,
			sess("u", pmap("name", ps("n"), "age", pi(1))), sess("u", pmap("name", ps("m"), "age", pi(1))), sess("u", pmap("name", ps("n"), "age", pi(2))),
			sess("u", pmap("name", ps("m"), "age", pi(2))), false, ""},
		{"globstar rule", []KeyRule{{"**/locked", RuleTheirs}},
			sess("u", pmap("p", pmap("locked", pi(0)))), sess("u", pmap("p", pmap("locked", pi(1)))), sess("u", pmap("p", pmap("locked", pi(2)))),
			sess("u", pmap("p", pmap("locked", pi(2)))), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(t, func(c *Config) { c.KeyRules = tc.rules })
			out, _, err := e.merge("id", "php", baseState{data: []byte(tc.base), known: true, exact: true}, []byte(tc.mine), []byte(tc.theirs))
			if tc.conflict {
				var ce *ConflictError
				if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || ce.Path != tc.conflictPath {
					t.Fatalf("err = %v, want conflict at %s", err, tc.conflictPath)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Fatalf("\n got %s\nwant %s", out, tc.want)
			}
		})
	}
}

func TestFailRuleStoresNothing(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.KeyRules = []KeyRule{{"total", RuleFail}} })
	a, b := e.NewClient("a"), e.NewClient("b")
	defer a.Close()
	defer b.Close()
	mustRead(t, a, "f1", ModeAuto)
	mustWrite(t, a, "f1", sess("total", pi(1)), 0)
	ra := mustRead(t, a, "f1", ModeAuto)
	rb := mustRead(t, b, "f1", ModeAuto)
	mustWrite(t, a, "f1", sess("total", pi(2)), ra.Version)
	_, err := b.Write(bg, WriteRequest{ID: "f1", Data: []byte(sess("total", pi(3))), BaseVersion: rb.Version})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.ID != "f1" || ce.Path != "total" {
		t.Fatalf("err = %v", err)
	}
	if got := stored(t, e, "f1"); got != sess("total", pi(2)) {
		t.Fatalf("stored %s", got)
	}
}

func TestReferencesFallBackToMine(t *testing.T) {
	e := newTestEngine(t, nil)
	base := sess("a", pi(1), "b", pi(1))
	mine := sess("a", pi(2), "b", "R:1;")
	theirs := sess("a", pi(1), "b", pi(1), "c", pi(3))
	out, _, err := e.merge("id", "php", baseState{data: []byte(base), known: true}, []byte(mine), []byte(theirs))
	if err != nil || string(out) != mine {
		t.Fatalf("out %s err %v", out, err)
	}
}

func TestCorruptDataMineWins(t *testing.T) {
	e := newTestEngine(t, nil)
	out, _, err := e.merge("id", "php", baseState{data: []byte(sess("a", pi(1))), known: true}, []byte(sess("a", pi(2))), []byte("a|i:broken"))
	if err != nil || string(out) != sess("a", pi(2)) {
		t.Fatalf("out %s err %v", out, err)
	}
}

func TestPHPSerializeFormat(t *testing.T) {
	e := newTestEngine(t, nil)
	base := "a:2:{s:1:\"a\";i:1;i:5;s:1:\"x\";}"
	mine := "a:2:{s:1:\"a\";i:2;i:5;s:1:\"x\";}"
	theirs := "a:3:{s:1:\"a\";i:1;i:5;s:1:\"x\";s:1:\"b\";i:7;}"
	out, _, err := e.merge("id", "php_serialize", baseState{data: []byte(base), known: true}, []byte(mine), []byte(theirs))
	if err != nil {
		t.Fatal(err)
	}
	if want := "a:3:{s:1:\"a\";i:2;i:5;s:1:\"x\";s:1:\"b\";i:7;}"; string(out) != want {
		t.Fatalf("got %s want %s", out, want)
	}
}

func TestUnknownBaseKeepsEverything(t *testing.T) {
	e := newTestEngine(t, nil)
	a := e.NewClient("a")
	defer a.Close()
	mustRead(t, a, "u1", ModeAuto)
	mustWrite(t, a, "u1", sess("a", pi(1), "b", pi(2)), 0)
	r := mustRead(t, a, "u1", ModeAuto)
	mustWrite(t, a, "u1", sess("a", pi(1), "b", pi(3)), r.Version)
	// A write arriving on a fresh connection with a version the cache has.
	b := e.NewClient("b")
	defer b.Close()
	w, err := b.Write(bg, WriteRequest{ID: "u1", Data: []byte(sess("a", pi(5), "b", pi(2))), BaseVersion: r.Version})
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != StatusMerged {
		t.Fatalf("status %s", w.Status)
	}
	if got := stored(t, e, "u1"); got != sess("a", pi(5), "b", pi(3)) {
		t.Fatalf("cached base merge: %s", got)
	}
	// No base at all: nothing the store has is dropped.
	c := e.NewClient("c")
	defer c.Close()
	if _, err := c.Write(bg, WriteRequest{ID: "u1", Data: []byte(sess("z", pi(1))), BaseVersion: 999}); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, e, "u1"); got != sess("a", pi(5), "b", pi(3), "z", pi(1)) {
		t.Fatalf("empty base merge: %s", got)
	}
}

func TestReadonlyDrop(t *testing.T) {
	e := newTestEngine(t, func(c *Config) {
		c.ModeRules = []ModeRule{{Method: "GET", Path: "/api/*", Mode: ModeReadonly}, {Path: "/checkout/*", Mode: ModeLocked}}
	})
	w := e.NewClient("w")
	mustRead(t, w, "r1", ModeAuto)
	mustWrite(t, w, "r1", sess("a", pi(1)), 0)
	w.Close()
	c := e.NewClient("c")
	defer c.Close()
	r, err := c.Read(bg, ReadRequest{ID: "r1", Method: "GET", Path: "/api/items?x=1"})
	if err != nil || r.Mode != ModeReadonly {
		t.Fatalf("mode %s err %v", r.Mode, err)
	}
	res, err := c.Write(bg, WriteRequest{ID: "r1", Data: []byte(sess("a", pi(2))), BaseVersion: r.Version})
	if err != nil || res.Status != StatusDropped {
		t.Fatalf("res %+v err %v", res, err)
	}
	if got := stored(t, e, "r1"); got != sess("a", pi(1)) {
		t.Fatalf("readonly write stored: %s", got)
	}
	if e.Stats().Dropped != 1 {
		t.Fatal("drop not counted")
	}
	r, _ = c.Read(bg, ReadRequest{ID: "r1", Method: "POST", Path: "/checkout/pay"})
	if r.Mode != ModeLocked {
		t.Fatalf("mode %s", r.Mode)
	}
	if h, ok := e.LockInfo("r1"); !ok || h.Owner != "c" {
		t.Fatal("locked read did not take the lock")
	}
	mustWrite(t, c, "r1", sess("a", pi(3)), r.Version)
	if _, ok := e.LockInfo("r1"); ok {
		t.Fatal("write did not release the lock")
	}
	r, _ = c.Read(bg, ReadRequest{ID: "r1", Method: "GET", Path: "/"})
	if r.Mode != ModeOptimistic {
		t.Fatalf("default mode %s", r.Mode)
	}
}

func TestOpaqueFormatLocked(t *testing.T) {
	e := newTestEngine(t, nil)
	c := e.NewClient("c")
	defer c.Close()
	r, err := c.Read(bg, ReadRequest{ID: "o1", Format: "igbinary"})
	if err != nil || r.Mode != ModeLocked {
		t.Fatalf("mode %s err %v", r.Mode, err)
	}
	blob := "\x00\x00\x00\x02\x14\x01"
	w, err := c.Write(bg, WriteRequest{ID: "o1", Data: []byte(blob), Format: "igbinary"})
	if err != nil || w.Status != StatusWritten {
		t.Fatalf("%+v %v", w, err)
	}
	info, err := e.Info(bg, "o1")
	if err != nil || info.Format != "igbinary" || info.Size != len(blob) {
		t.Fatalf("%+v %v", info, err)
	}
	// A later read without FORMAT still sees the stored serializer.
	c2 := e.NewClient("c2")
	defer c2.Close()
	r, err = c2.Read(bg, ReadRequest{ID: "o1"})
	if err != nil || r.Mode != ModeLocked {
		t.Fatalf("mode %s err %v", r.Mode, err)
	}
}

func TestLockUpgrade(t *testing.T) {
	e := newTestEngine(t, nil)
	a, b := e.NewClient("a"), e.NewClient("b")
	defer a.Close()
	defer b.Close()
	mustRead(t, a, "l1", ModeAuto)
	mustWrite(t, a, "l1", sess("x", pi(1), "y", pi(1)), 0)
	ra := mustRead(t, a, "l1", ModeAuto)
	rb := mustRead(t, b, "l1", ModeAuto)
	mustWrite(t, b, "l1", sess("x", pi(1), "y", pi(2)), rb.Version)
	// a changed x before asking for the lock.
	lr, err := a.Lock(bg, LockRequest{ID: "l1", Data: []byte(sess("x", pi(5), "y", pi(1)))})
	if err != nil {
		t.Fatal(err)
	}
	if lr.Mode != ModeLocked || string(lr.Data) != sess("x", pi(5), "y", pi(2)) {
		t.Fatalf("lock result %+v", lr)
	}
	_ = ra
	// While a holds the lock, a locked reader waits.
	got := make(chan ReadResult, 1)
	go func() {
		r, err := b.Read(bg, ReadRequest{ID: "l1", Mode: ModeLocked})
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	waitFor(t, func() bool { h, _ := e.LockInfo("l1"); return h.Waiters == 1 })
	w := mustWrite(t, a, "l1", sess("x", pi(5), "y", pi(2), "z", pi(1)), lr.Version)
	if w.Status != StatusWritten {
		t.Fatalf("status %s", w.Status)
	}
	r := <-got
	if string(r.Data) != sess("x", pi(5), "y", pi(2), "z", pi(1)) {
		t.Fatalf("waiter read %s", r.Data)
	}
}

func TestIDs(t *testing.T) {
	e := newTestEngine(t, nil)
	for _, tc := range []struct {
		bits  int
		chars string
	}{{4, "0123456789abcdef"}, {5, "0123456789abcdefghijklmnopqrstuv"}, {6, idAlphabet}} {
		seen := map[byte]bool{}
		for i := 0; i < 50; i++ {
			id, err := e.CreateID(bg, IDOptions{Length: 48, BitsPerChar: tc.bits})
			if err != nil {
				t.Fatal(err)
			}
			if len(id) != 48 {
				t.Fatalf("len %d", len(id))
			}
			for j := 0; j < len(id); j++ {
				if !strings.ContainsRune(tc.chars, rune(id[j])) {
					t.Fatalf("bits %d: char %q", tc.bits, id[j])
				}
				seen[id[j]] = true
			}
		}
		if len(seen) < len(tc.chars)*3/4 {
			t.Fatalf("bits %d: only %d distinct chars", tc.bits, len(seen))
		}
	}
	id, err := e.CreateID(bg, IDOptions{})
	if err != nil || len(id) != 32 {
		t.Fatalf("default id %q %v", id, err)
	}
	for _, opt := range []IDOptions{{Length: 21}, {Length: 257}, {BitsPerChar: 3}, {BitsPerChar: 7}} {
		if _, err := e.CreateID(bg, opt); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("%+v: err %v", opt, err)
		}
	}
	c := e.NewClient("c")
	defer c.Close()
	for _, bad := range []string{"", "../etc/passwd", "a b", "abc\x00", strings.Repeat("a", 257), "ü"} {
		if _, err := c.Read(bg, ReadRequest{ID: bad}); !errors.Is(err, ErrInvalidID) {
			t.Fatalf("%q: err %v", bad, err)
		}
		if _, err := e.ValidateID(bg, bad); !errors.Is(err, ErrInvalidID) {
			t.Fatalf("%q: err %v", bad, err)
		}
	}
	if e.Stats().InvalidIDs != 12 {
		t.Fatalf("invalid ids counted %d", e.Stats().InvalidIDs)
	}
	ok, err := e.ValidateID(bg, "unknown")
	if ok || err != nil {
		t.Fatal("strict mode accepted an unknown id")
	}
	// Strict mode still lets PHP read the new id it just created.
	if r, err := c.Read(bg, ReadRequest{ID: id}); err != nil || r.Version != 0 {
		t.Fatal(err)
	}
	mustWrite(t, c, id, sess("a", pi(1)), 0)
	if ok, _ := e.ValidateID(bg, id); !ok {
		t.Fatal("live id not valid")
	}
	lax := newTestEngine(t, func(c *Config) { c.StrictIDs = false })
	if ok, _ := lax.ValidateID(bg, "whatever"); !ok {
		t.Fatal("non-strict engine refused a well-formed id")
	}
}

func TestDestroyTouchInfoGC(t *testing.T) {
	e := newTestEngine(t, nil)
	c := e.NewClient("c")
	defer c.Close()
	mustRead(t, c, "d1", ModeAuto)
	ok, err := c.Destroy(bg, "d1")
	if ok || err != nil {
		t.Fatal("destroy of absent session")
	}
	mustWrite(t, c, "d1", sess("a", pi(1)), 0)
	if ok, err := c.Touch(bg, "d1", time.Hour); !ok || err != nil {
		t.Fatal("touch failed", err)
	}
	info, err := e.Info(bg, "d1")
	if err != nil || !info.Exists || info.Format != "php" || time.Until(info.Expires) < 50*time.Minute {
		t.Fatalf("info %+v %v", info, err)
	}
	if _, err := json.Marshal(info); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, "d1", ModeReadonly)
	if ok, err := c.Destroy(bg, "d1"); !ok || err != nil {
		t.Fatal("destroy failed", err)
	}
	if ok, _ := c.Touch(bg, "d1", 0); ok {
		t.Fatal("touch of destroyed session")
	}
	// Expiry: a session with a tiny TTL is swept and reported by GC.
	if _, err := c.Write(bg, WriteRequest{ID: "d2", Data: []byte(sess("a", pi(1))), TTL: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if n, err := e.SweepNow(bg); err != nil || n != 1 {
		t.Fatalf("swept %d %v", n, err)
	}
	if n, _ := e.GC(bg, 1440); n != 1 {
		t.Fatalf("GC reported %d", n)
	}
	if n, _ := e.GC(bg, 1440); n != 0 {
		t.Fatalf("GC reported %d twice", n)
	}
}

func TestSweeperAndCloseNoLeak(t *testing.T) {
	defer checkNoLeak(t)()
	e := newTestEngine(t, func(c *Config) { c.SweepInterval = 5 * time.Millisecond })
	c := e.NewClient("c")
	if _, err := c.Write(bg, WriteRequest{ID: "e1", Data: []byte(sess("a", pi(1))), TTL: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return e.Stats().Swept == 1 })
	mustRead(t, c, "e2", ModeLocked)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(bg, ReadRequest{ID: "e3"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	c.Close()
}

func TestTooLarge(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.MaxDataSize = 16 })
	c := e.NewClient("c")
	defer c.Close()
	_, err := c.Write(bg, WriteRequest{ID: "t1", Data: []byte(sess("a", ps(strings.Repeat("x", 20))))})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v", err)
	}
}

func TestOps(t *testing.T) {
	e := newTestEngine(t, nil)
	c := e.NewClient("c")
	defer c.Close()
	mustRead(t, c, "op1", ModeAuto)
	w := mustWrite(t, c, "op1", sess("n", pi(1), "s", ps("ab")), 0)
	_ = w
	r := mustRead(t, c, "op1", ModeAuto)

	res, err := c.Op(bg, OpRequest{ID: "op1", Kind: OpIncr, Key: "n", Delta: 4})
	if err != nil || res.Int != 5 {
		t.Fatalf("incr %+v %v", res, err)
	}
	res, err = c.Op(bg, OpRequest{ID: "op1", Kind: OpAppend, Key: "s", Value: []byte("cd")})
	if err != nil || res.Int != 4 {
		t.Fatalf("append %+v %v", res, err)
	}
	res, err = c.Op(bg, OpRequest{ID: "op1", Kind: OpPush, Key: "l", Value: []byte(ps("v"))})
	if err != nil || res.Int != 1 {
		t.Fatalf("push %+v %v", res, err)
	}
	if _, err = c.Op(bg, OpRequest{ID: "op1", Kind: OpSet, Key: "m", Value: []byte(pi(9))}); err != nil {
		t.Fatal(err)
	}
	res, err = c.Op(bg, OpRequest{ID: "op1", Kind: OpUnset, Key: "m"})
	if err != nil || res.Int != 1 {
		t.Fatalf("unset %+v %v", res, err)
	}
	if _, err = c.Op(bg, OpRequest{ID: "op1", Kind: OpIncr, Key: "s", Delta: 1}); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "string") {
		t.Fatalf("incr on string: %v", err)
	}
	if _, err = c.Op(bg, OpRequest{ID: "op1", Kind: OpSet, Key: "m", Value: []byte("i:")}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("set invalid: %v", err)
	}
	want := sess("n", pi(5), "s", ps("abcd"), "l", plist(ps("v")))
	if got := stored(t, e, "op1"); got != want {
		t.Fatalf("stored %s", got)
	}
	// The request mirrored the ops locally; its final write must not apply
	// them twice, and another request's increment meanwhile survives.
	other := e.NewClient("o")
	defer other.Close()
	if _, err := other.Op(bg, OpRequest{ID: "op1", Kind: OpIncr, Key: "n", Delta: 10}); err != nil {
		t.Fatal(err)
	}
	final := mustWrite(t, c, "op1", sess("n", pi(5), "s", ps("abcd"), "l", plist(ps("v")), "new", pi(1)), r.Version)
	if final.Status != StatusMerged {
		t.Fatalf("final %+v", final)
	}
	if got, want := stored(t, e, "op1"), sess("n", pi(15), "s", ps("abcd"), "l", plist(ps("v")), "new", pi(1)); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}

func TestRegenerateParallel(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.RegenerateGrace = 300 * time.Millisecond })
	owner := e.NewClient("owner")
	defer owner.Close()
	old := "oldsessionid0000000000"
	mustRead(t, owner, old, ModeAuto)
	mustWrite(t, owner, old, sess("user", ps("alice")), 0)
	r := mustRead(t, owner, old, ModeAuto)

	// Parallel requests with the old cookie, reading before and writing
	// after the regenerate.
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	regenerated := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := e.NewClient(fmt.Sprint("p", i))
			defer c.Close()
			<-start
			rr, err := c.Read(bg, ReadRequest{ID: old, Format: "php"})
			if err != nil {
				t.Error(err)
				return
			}
			if i%2 == 0 {
				<-regenerated
			}
			data := string(rr.Data) + sess(fmt.Sprint("k", i), pi(int64(i)))
			if _, err := c.Write(bg, WriteRequest{ID: old, Data: []byte(data), BaseVersion: rr.Version}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	close(start)
	newID, err := owner.Regenerate(bg, old, IDOptions{Length: 26, BitsPerChar: 5})
	if err != nil {
		t.Fatal(err)
	}
	close(regenerated)
	wg.Wait()
	if len(newID) != 26 || newID == old {
		t.Fatalf("new id %q", newID)
	}
	// The owner's final write goes to the new id.
	final := mustWrite(t, owner, newID, sess("user", ps("alice"), "rotated", pi(1)), r.Version)
	_ = final
	got := stored(t, e, newID)
	for i := 0; i < n; i++ {
		if !strings.Contains(got, sess(fmt.Sprint("k", i), pi(int64(i)))) {
			t.Fatalf("write of old-id request %d lost: %s", i, got)
		}
	}
	if !strings.Contains(got, "rotated|i:1;") || !strings.Contains(got, "user|") {
		t.Fatalf("owner write lost: %s", got)
	}
	info, err := e.Info(bg, old)
	if err != nil || info.AliasOf != newID {
		t.Fatalf("info %+v %v", info, err)
	}
	if ok, _ := e.ValidateID(bg, old); !ok {
		t.Fatal("old id invalid within grace")
	}
	time.Sleep(350 * time.Millisecond)
	if ok, _ := e.ValidateID(bg, old); ok {
		t.Fatal("old id still valid after grace")
	}
	c := e.NewClient("late")
	defer c.Close()
	if rr, _ := c.Read(bg, ReadRequest{ID: old}); rr.Version != 0 {
		t.Fatal("old id still reads data after grace")
	}
	if e.Stats().Regenerates != 1 {
		t.Fatal("regenerate not counted")
	}
}

func TestRegenerateMovesLockAndDestroyAlias(t *testing.T) {
	e := newTestEngine(t, nil)
	c := e.NewClient("c")
	defer c.Close()
	old := "lockedold"
	mustRead(t, c, old, ModeLocked)
	mustWrite(t, c, old, sess("a", pi(1)), 0)
	mustRead(t, c, old, ModeLocked)
	newID, err := c.Regenerate(bg, old, IDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := e.LockInfo(newID); !ok || h.Owner != "c" {
		t.Fatal("lock did not move to the new id")
	}
	if _, ok := e.LockInfo(old); ok {
		t.Fatal("old lock kept")
	}
	// A locked reader on the old id queues on the new one.
	d := e.NewClient("d")
	defer d.Close()
	got := make(chan ReadResult, 1)
	go func() {
		r, err := d.Read(bg, ReadRequest{ID: old, Mode: ModeLocked})
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	waitFor(t, func() bool { h, _ := e.LockInfo(newID); return h.Waiters == 1 })
	c.Release(bg, newID)
	r := <-got
	if string(r.Data) != sess("a", pi(1)) {
		t.Fatalf("alias read %q", r.Data)
	}
	d.Release(bg, old)
	if _, ok := e.LockInfo(newID); ok {
		t.Fatal("release via old id kept the lock")
	}
	// Destroy through the alias ends both.
	if ok, err := d.Destroy(bg, old); !ok || err != nil {
		t.Fatal("destroy via alias", err)
	}
	if ok, _ := e.ValidateID(bg, old); ok {
		t.Fatal("alias survived destroy")
	}
	if ok, _ := e.ValidateID(bg, newID); ok {
		t.Fatal("session survived destroy")
	}
}

// A store that loses every compare-and-swap shows the retry bound.
type flakyStore struct {
	handlers.Store
}

func (f flakyStore) Save(ctx context.Context, id string, rec handlers.Record, expect uint64) (uint64, error) {
	return 0, handlers.ErrVersionMismatch
}

func TestCASGivesUp(t *testing.T) {
	e := newTestEngine(t, nil)
	e.store = flakyStore{e.store}
	c := e.NewClient("c")
	defer c.Close()
	_, err := c.Write(bg, WriteRequest{ID: "x1", Data: []byte(sess("a", pi(1)))})
	if !errors.Is(err, handlers.ErrVersionMismatch) || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("err %v", err)
	}
}

func TestInfoJSONView(t *testing.T) {
	e := newTestEngine(t, nil)
	c := e.NewClient("c")
	defer c.Close()
	data := sess("user", pmap("name", ps("al\"ice"), "roles", plist(ps("a"), ps("b"))), "n", pi(3), "f", "d:0.5;", "o", `O:3:"Foo":1:{s:6:"`+"\x00*\x00bar"+`";b:1;}`)
	if _, err := c.Write(bg, WriteRequest{ID: "j1", Data: []byte(data), Format: "php"}); err != nil {
		t.Fatal(err)
	}
	info, err := e.Info(bg, "j1")
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(info.Data)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"user":{"name":"al\"ice","roles":["a","b"]},"n":3,"f":0.5,"o":{"__class":"Foo","bar":true}}`
	if string(out) != want {
		t.Fatalf("json view\n got %s\nwant %s", out, want)
	}
}

func TestSameDeltaCountersAndAppendsBothKept(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.Counters = []string{"n", "stats/*"} })
	base := sess("n", pi(5), "l", plist(ps("a")), "stats", pmap("views", "d:1.5;"))
	mine := sess("n", pi(6), "l", plist(ps("a"), ps("x")), "stats", pmap("views", "d:2.5;"))
	theirs := sess("n", pi(6), "l", plist(ps("a"), ps("x")), "stats", pmap("views", "d:2.5;"))
	out, _, err := e.merge("id", "php", baseState{data: []byte(base), known: true}, []byte(mine), []byte(theirs))
	if err != nil {
		t.Fatal(err)
	}
	if want := sess("n", pi(7), "l", plist(ps("a"), ps("x"), ps("x")), "stats", pmap("views", "d:3.5;")); string(out) != want {
		t.Fatalf("\n got %s\nwant %s", out, want)
	}
	// Without a known base nothing is summed or doubled.
	out, _, _ = e.merge("id", "php", baseState{}, []byte(mine), []byte(theirs))
	if string(out) != mine {
		t.Fatalf("unknown base: %s", out)
	}
}

func TestReconnectUnchangedWriteOnlyTouches(t *testing.T) {
	e := newTestEngine(t, nil)
	a := e.NewClient("a")
	mustRead(t, a, "rc", ModeAuto)
	w := mustWrite(t, a, "rc", sess("a", pi(1)), 0)
	a.Close()
	b := e.NewClient("b")
	defer b.Close()
	res, err := b.Write(bg, WriteRequest{ID: "rc", Data: []byte(sess("a", pi(1))), BaseVersion: w.Version})
	if err != nil || res.Status != StatusUnchanged || res.Version != w.Version {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestLockUpgradeConflictReleases(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.KeyRules = []KeyRule{{"x", RuleFail}} })
	a, b := e.NewClient("a"), e.NewClient("b")
	defer a.Close()
	defer b.Close()
	mustRead(t, a, "lc", ModeAuto)
	mustWrite(t, a, "lc", sess("x", pi(1)), 0)
	mustRead(t, a, "lc", ModeAuto)
	rb := mustRead(t, b, "lc", ModeAuto)
	mustWrite(t, b, "lc", sess("x", pi(2)), rb.Version)
	if _, err := a.Lock(bg, LockRequest{ID: "lc", Data: []byte(sess("x", pi(3)))}); !errors.Is(err, ErrConflict) {
		t.Fatalf("err %v", err)
	}
	if _, ok := e.LockInfo("lc"); ok {
		t.Fatal("lock kept after a failed upgrade")
	}
}

func TestDestroyedSessionNotResurrectedByLazyWrite(t *testing.T) {
	e := newTestEngine(t, nil)
	a, b := e.NewClient("a"), e.NewClient("b")
	defer a.Close()
	defer b.Close()
	mustRead(t, a, "dd", ModeAuto)
	mustWrite(t, a, "dd", sess("a", pi(1)), 0)
	r := mustRead(t, a, "dd", ModeAuto)
	if ok, _ := b.Destroy(bg, "dd"); !ok {
		t.Fatal("destroy")
	}
	w := mustWrite(t, a, "dd", sess("a", pi(1)), r.Version)
	if w.Status != StatusUnchanged {
		t.Fatalf("status %s", w.Status)
	}
	if ok, _ := e.ValidateID(bg, "dd"); ok {
		t.Fatal("destroyed session came back")
	}
}

// Two engines over one store behave like two daemons sharing Redis: only
// the store's compare-and-swap keeps them honest.
func TestTwoDaemonsShareAStore(t *testing.T) {
	st, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mk := func() *Engine {
		cfg := NewConfig(nopCloseStore{st})
		cfg.Logger = quietLogger()
		cfg.Counters = []string{"n"}
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	engines := []*Engine{mk(), mk()}
	const workers, rounds = 6, 15
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e := engines[i%2]
			for r := 0; r < rounds; r++ {
				c := e.NewClient(fmt.Sprint("w", i))
				rd, err := c.Read(bg, ReadRequest{ID: "shared", Format: "php"})
				if err != nil {
					t.Error(err)
					return
				}
				n := int64(0)
				if len(rd.Data) > 0 {
					fmt.Sscanf(string(rd.Data), "n|i:%d;", &n)
				}
				data := sess("n", pi(n+1)) + sess(fmt.Sprintf("w%d_%d", i, r), pi(1))
				if len(rd.Data) > len(sess("n", pi(n))) {
					data = sess("n", pi(n+1)) + string(rd.Data[len(sess("n", pi(n))):]) + sess(fmt.Sprintf("w%d_%d", i, r), pi(1))
				}
				if _, err := c.Write(bg, WriteRequest{ID: "shared", Data: []byte(data), BaseVersion: rd.Version, Format: "php"}); err != nil {
					t.Error(err)
				}
				c.Close()
			}
		}(i)
	}
	wg.Wait()
	got := stored(t, engines[0], "shared")
	if !strings.HasPrefix(got, sess("n", pi(workers*rounds))) {
		t.Fatalf("counter lost increments: %.40s", got)
	}
	for i := 0; i < workers; i++ {
		for r := 0; r < rounds; r++ {
			if !strings.Contains(got, sess(fmt.Sprintf("w%d_%d", i, r), pi(1))) {
				t.Fatalf("key w%d_%d lost", i, r)
			}
		}
	}
}

type nopCloseStore struct{ handlers.Store }

func (nopCloseStore) Close() error { return nil }

// loadCounter counts the loads of the real store it wraps; the embedded
// *memory.Store keeps its exact versions.
type loadCounter struct {
	*memory.Store
	loads atomic.Int64
}

func (l *loadCounter) Load(ctx context.Context, id string) (handlers.Record, error) {
	l.loads.Add(1)
	return l.Store.Load(ctx, id)
}

// On a store with exact versions a write that finds the session as its
// read left it saves without loading; one that finds it changed, by data
// or by meta alone, loads, merges and keeps what the other side did.
func TestWriteFromExactBaseSkipsLoad(t *testing.T) {
	st, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lc := &loadCounter{Store: st}
	cfg := NewConfig(lc)
	cfg.Logger = quietLogger()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !e.exactVersions {
		t.Fatal("memory store does not announce exact versions")
	}
	a, b := e.NewClient("a"), e.NewClient("b")
	defer a.Close()
	defer b.Close()
	const id = "exactbase0000000000000000"
	mustWrite(t, a, id, sess("x", pi(1)), 0)

	r := mustRead(t, a, id, ModeOptimistic)
	before := lc.loads.Load()
	w := mustWrite(t, a, id, sess("x", pi(2)), r.Version)
	if got := lc.loads.Load() - before; got != 0 || w.Status != StatusWritten {
		t.Fatalf("unchanged session: %d loads, status %s; want 0 loads, written", got, w.Status)
	}

	// Someone else writes in between: the write loads and merges.
	r = mustRead(t, a, id, ModeOptimistic)
	mustRead(t, b, id, ModeOptimistic)
	mustWrite(t, b, id, sess("x", pi(2), "y", pi(1)), 0)
	before = lc.loads.Load()
	w = mustWrite(t, a, id, sess("x", pi(3)), r.Version)
	if lc.loads.Load() == before || w.Status != StatusMerged {
		t.Fatalf("changed session: status %s without a load", w.Status)
	}
	if got, want := stored(t, e, id), sess("x", pi(3), "y", pi(1)); got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}

	// A change of the meta alone (a reference added by another request)
	// must survive the write of a request that read before it.
	r = mustRead(t, a, id, ModeOptimistic)
	if _, err := b.AddRef(bg, id, "user:42", false); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, id, sess("x", pi(4), "y", pi(1)), r.Version)
	refs, err := e.Refs(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0] != "user:42" {
		t.Fatalf("refs after the write: %q, want [user:42]", refs)
	}

	// The same request tags its session and then writes it (a login).
	r = mustRead(t, a, id, ModeOptimistic)
	if _, err := a.AddRef(bg, id, "user:7", false); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, id, sess("x", pi(5), "y", pi(1)), r.Version)
	if refs, err = e.Refs(bg, id); err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 {
		t.Fatalf("refs after a login write: %q, want user:42 and user:7", refs)
	}
}
