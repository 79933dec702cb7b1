package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/memory"
)

// twoEngines returns two engines over one memory store: two daemons.
func twoEngines(t *testing.T, mod func(*Config)) (*Engine, *Engine, handlers.Store) {
	t.Helper()
	st, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mk := func() *Engine {
		cfg := NewConfig(nopCloseStore{st})
		cfg.Logger = quietLogger()
		if mod != nil {
			mod(&cfg)
		}
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	return mk(), mk(), st
}

func newSession(t *testing.T, e *Engine, data string) string {
	t.Helper()
	id, err := e.CreateID(bg, IDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := e.NewClient("setup")
	defer c.Close()
	mustRead(t, c, id, ModeOptimistic)
	mustWrite(t, c, id, data, 0)
	return id
}

func mustList(t *testing.T, e *Engine, ref string) []string {
	t.Helper()
	ids, err := e.ListRef(bg, ref)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func TestRefsAcrossTwoDaemons(t *testing.T) {
	a, b, _ := twoEngines(t, nil)
	s1 := newSession(t, a, sess("u", pi(1)))
	s2 := newSession(t, b, sess("u", pi(1)))
	s3 := newSession(t, a, sess("u", pi(2)))
	ca, cb := a.NewClient("a"), b.NewClient("b")
	defer ca.Close()
	defer cb.Close()

	for _, x := range []struct {
		c   *Client
		id  string
		ref string
	}{{ca, s1, "user:1"}, {cb, s2, "user:1"}, {ca, s3, "user:2"}, {cb, s1, "tenant:x"}} {
		res, err := x.c.AddRef(bg, x.id, x.ref, false)
		if err != nil || !res.Added || res.Killed != 0 {
			t.Fatalf("AddRef %s %s: %+v %v", x.id, x.ref, res, err)
		}
	}
	if res, err := ca.AddRef(bg, s1, "user:1", false); err != nil || res.Added {
		t.Fatalf("second AddRef: %+v %v", res, err)
	}
	if got, want := mustList(t, b, "user:1"), sorted(s1, s2); !slices.Equal(got, want) {
		t.Fatalf("list user:1 = %v, want %v", got, want)
	}
	if got := mustList(t, a, "user:2"); !slices.Equal(got, []string{s3}) {
		t.Fatalf("list user:2 = %v", got)
	}
	if got := mustList(t, a, "nobody"); len(got) != 0 {
		t.Fatalf("list of unknown ref = %v", got)
	}
	// Writes keep the references (the meta is carried, not rebuilt).
	mustRead(t, ca, s1, ModeOptimistic)
	mustWrite(t, ca, s1, sess("u", pi(1), "x", pi(9)), 0)
	if refs, _ := a.Refs(bg, s1); !slices.Equal(refs, []string{"user:1", "tenant:x"}) {
		t.Fatalf("refs after write: %v", refs)
	}
	if _, err := ca.Op(bg, OpRequest{ID: s1, Kind: OpIncr, Key: "n", Delta: 1}); err != nil {
		t.Fatal(err)
	}
	if refs, _ := b.Refs(bg, s1); len(refs) != 2 {
		t.Fatalf("refs after op: %v", refs)
	}

	// Remove on one daemon, list on the other.
	if ok, err := cb.RemoveRef(bg, s2, "user:1"); err != nil || !ok {
		t.Fatalf("RemoveRef: %v %v", ok, err)
	}
	if ok, err := cb.RemoveRef(bg, s2, "user:1"); err != nil || ok {
		t.Fatalf("RemoveRef again: %v %v", ok, err)
	}
	if got := mustList(t, a, "user:1"); !slices.Equal(got, []string{s1}) {
		t.Fatalf("list after remove = %v", got)
	}

	// Kill: every session of the reference, and only those.
	n, err := b.KillRef(bg, "tenant:x")
	if err != nil || n != 1 {
		t.Fatalf("KillRef: %d %v", n, err)
	}
	if stored(t, a, s1) != "" {
		t.Fatal("killed session still has data")
	}
	if ok, _ := a.ValidateID(bg, s1); ok {
		t.Fatal("killed session still validates")
	}
	if got := mustList(t, a, "user:1"); len(got) != 0 {
		t.Fatalf("user:1 still lists %v after its session was killed", got)
	}
	if ok, _ := a.ValidateID(bg, s3); !ok {
		t.Fatal("unrelated session killed")
	}
	if n, err := a.KillRef(bg, "tenant:x"); err != nil || n != 0 {
		t.Fatalf("second KillRef: %d %v", n, err)
	}
}

func TestRefBeforeFirstWriteAndBaseKept(t *testing.T) {
	e := newTestEngine(t, nil)
	id, _ := e.CreateID(bg, IDOptions{})
	c := e.NewClient("login")
	defer c.Close()
	r := mustRead(t, c, id, ModeOptimistic)
	if _, err := c.AddRef(bg, id, "user:7", false); err != nil {
		t.Fatal(err)
	}
	// The tagged, still empty session exists for strict mode.
	if ok, _ := e.ValidateID(bg, id); !ok {
		t.Fatal("tagged new session does not validate")
	}
	w := mustWrite(t, c, id, sess("uid", pi(7)), r.Version)
	if w.Status != StatusWritten {
		t.Fatalf("write after AddRef: %s, want written (base moved with the meta save)", w.Status)
	}
	if refs, _ := e.Refs(bg, id); !slices.Equal(refs, []string{"user:7"}) {
		t.Fatalf("refs %v", refs)
	}
	info, err := e.Info(bg, id)
	if err != nil || !slices.Equal(info.Refs, []string{"user:7"}) {
		t.Fatalf("info refs %v %v", info.Refs, err)
	}
}

func TestExclusiveRefEndsOlderSessions(t *testing.T) {
	a, b, _ := twoEngines(t, func(c *Config) { c.SingleSessionRefs = []string{"user:*"} })
	old1 := newSession(t, a, sess("u", pi(1)))
	old2 := newSession(t, b, sess("u", pi(1)))
	other := newSession(t, a, sess("u", pi(2)))
	ca, cb := a.NewClient("a"), b.NewClient("b")
	defer ca.Close()
	defer cb.Close()
	// "group:" is not single-session: both stay.
	for _, id := range []string{old1, old2} {
		if _, err := ca.AddRef(bg, id, "group:1", false); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustList(t, a, "group:1"); len(got) != 2 {
		t.Fatalf("group list %v", got)
	}
	if res, err := ca.AddRef(bg, old1, "user:1", false); err != nil || res.Killed != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := ca.AddRef(bg, other, "user:2", false); err != nil {
		t.Fatal(err)
	}
	// A new login of user 1 on the other daemon ends the first one.
	res, err := cb.AddRef(bg, old2, "user:1", false)
	if err != nil || res.Killed != 1 {
		t.Fatalf("exclusive by pattern: %+v %v", res, err)
	}
	if ok, _ := a.ValidateID(bg, old1); ok {
		t.Fatal("older session of user:1 survived")
	}
	// Its other references no longer list it.
	if got := mustList(t, a, "group:1"); !slices.Equal(got, []string{old2}) {
		t.Fatalf("group list after kill %v", got)
	}
	// The explicit flag works for refs outside the pattern.
	newer := newSession(t, a, sess("u", pi(3)))
	if res, err := ca.AddRef(bg, newer, "group:1", true); err != nil || res.Killed != 1 {
		t.Fatalf("exclusive flag: %+v %v", res, err)
	}
	if ok, _ := a.ValidateID(bg, other); !ok {
		t.Fatal("user:2 session ended by user:1 login")
	}
}

func TestRefsFollowRegenerate(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.RegenerateGrace = time.Hour })
	id := newSession(t, e, sess("u", pi(1)))
	c := e.NewClient("r")
	defer c.Close()
	if _, err := c.AddRef(bg, id, "user:1", false); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, id, ModeOptimistic)
	nid, err := c.Regenerate(bg, id, IDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustList(t, e, "user:1"); !slices.Equal(got, []string{nid}) {
		t.Fatalf("after regenerate list = %v, want [%s]", got, nid)
	}
	if n, err := e.KillRef(bg, "user:1"); err != nil || n != 1 {
		t.Fatalf("kill %d %v", n, err)
	}
	// The old id was an alias of the killed session: it reads as empty.
	if r := mustRead(t, c, id, ModeOptimistic); r.Version != 0 {
		t.Fatalf("old id still reads version %d", r.Version)
	}
}

func TestRefIndexKeptAliveAndPrunedLazily(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.DefaultTTL = time.Hour })
	id := newSession(t, e, sess("u", pi(1)))
	c := e.NewClient("x")
	defer c.Close()
	if _, err := c.AddRef(bg, id, "user:1", false); err != nil {
		t.Fatal(err)
	}
	idx, err := e.store.Load(bg, refIndexID("user:1"))
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := e.store.Load(bg, id)
	if idx.Expires.Before(rec.Expires) {
		t.Fatalf("index expires %v before its session %v", idx.Expires, rec.Expires)
	}
	// A long TTL write moves the session far ahead; the index follows.
	mustRead(t, c, id, ModeOptimistic)
	if _, err := c.Write(bg, WriteRequest{ID: id, Data: []byte(sess("u", pi(2))), TTL: 100 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	idx, _ = e.store.Load(bg, refIndexID("user:1"))
	rec, _ = e.store.Load(bg, id)
	if idx.Expires.Before(rec.Expires) {
		t.Fatalf("index expires %v before its session %v after a long write", idx.Expires, rec.Expires)
	}
	// A session that is destroyed stays in the index until a listing.
	if _, err := c.Destroy(bg, id); err != nil {
		t.Fatal(err)
	}
	ix, _, _ := e.loadIndex(bg, "user:1")
	if len(ix.IDs) != 1 {
		t.Fatalf("index %v", ix.IDs)
	}
	if got := mustList(t, e, "user:1"); len(got) != 0 {
		t.Fatalf("list %v", got)
	}
	ix, _, _ = e.loadIndex(bg, "user:1")
	if len(ix.IDs) != 0 {
		t.Fatalf("index not pruned: %v", ix.IDs)
	}
	// A lost index entry comes back with the session's next request.
	id2 := newSession(t, e, sess("u", pi(1)))
	if _, err := c.AddRef(bg, id2, "user:1", false); err != nil {
		t.Fatal(err)
	}
	if err := e.indexRemove(bg, "user:1", id2); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, id2, ModeOptimistic)
	if got := mustList(t, e, "user:1"); !slices.Equal(got, []string{id2}) {
		t.Fatalf("index not healed: %v", got)
	}
}

func TestReservedIDsAndBadRefs(t *testing.T) {
	e := newTestEngine(t, nil)
	c := e.NewClient("x")
	defer c.Close()
	rid := refIndexID("user:1")
	if _, err := c.Read(bg, ReadRequest{ID: rid}); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("read of an index id: %v", err)
	}
	if _, err := c.Write(bg, WriteRequest{ID: "--phpsessd-x", Data: []byte("a|i:1;")}); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("write of a reserved id: %v", err)
	}
	id := newSession(t, e, sess("u", pi(1)))
	for _, ref := range []string{"", "a b", "tab\there", string(make([]byte, MaxRefLength+1)), "é"} {
		if _, err := c.AddRef(bg, id, ref, false); !errors.Is(err, ErrBadRequest) {
			t.Errorf("AddRef %q: %v", ref, err)
		}
	}
	for i := 0; i < MaxRefsPerSession; i++ {
		if _, err := c.AddRef(bg, id, fmt.Sprint("r:", i), false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AddRef(bg, id, "one:more", false); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("ref over the per-session limit: %v", err)
	}
	// Listing skips index records.
	page, err := e.ListSessions(bg, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(page.IDs, []string{id}) || page.Cursor != "" {
		t.Fatalf("ListSessions %+v", page)
	}
}

func TestListSessionsPages(t *testing.T) {
	e := newTestEngine(t, nil)
	var all []string
	for i := 0; i < 7; i++ {
		all = append(all, newSession(t, e, sess("u", pi(int64(i)))))
	}
	slices.Sort(all)
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := e.ListSessions(bg, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.IDs...)
		if p.Cursor == "" {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
		cursor = p.Cursor
	}
	if !slices.Equal(got, all) {
		t.Fatalf("pages %v, want %v", got, all)
	}
}

// Concurrent adds of one reference on two daemons: none is lost.
func TestConcurrentAddRefTwoDaemons(t *testing.T) {
	a, b, _ := twoEngines(t, nil)
	const n = 24
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newSession(t, a, sess("u", pi(int64(i))))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, id := range ids {
		wg.Add(1)
		go func(i int, id string) {
			defer wg.Done()
			e := a
			if i%2 == 1 {
				e = b
			}
			c := e.NewClient(fmt.Sprint("w", i))
			defer c.Close()
			if _, err := c.AddRef(context.Background(), id, "team:1", false); err != nil {
				errs <- err
			}
		}(i, id)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := mustList(t, b, "team:1"); !slices.Equal(got, sorted(ids...)) {
		t.Fatalf("%d of %d sessions listed", len(got), n)
	}
	if k, err := a.KillRef(bg, "team:1"); err != nil || k != n {
		t.Fatalf("kill %d %v", k, err)
	}
}

// countingStore counts saves of reference index records.
type countingStore struct {
	handlers.Store
	mu         sync.Mutex
	indexSaves int
}

func (s *countingStore) Save(ctx context.Context, id string, rec handlers.Record, expect uint64) (uint64, error) {
	if IsReservedID(id) {
		s.mu.Lock()
		s.indexSaves++
		s.mu.Unlock()
	}
	return s.Store.Save(ctx, id, rec, expect)
}

func (s *countingStore) saves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.indexSaves
}

// Keeping the index alive must not cost an index write per request.
func TestRefIndexRefreshIsAmortised(t *testing.T) {
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Store: mem}
	mk := func() *Engine {
		cfg := NewConfig(nopCloseStore{st})
		cfg.Logger = quietLogger()
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	a := mk()
	id := newSession(t, a, sess("n", pi(0)))
	c := a.NewClient("c")
	defer c.Close()
	if _, err := c.AddRef(bg, id, "user:1", false); err != nil {
		t.Fatal(err)
	}
	before := st.saves()
	for i := 1; i <= 20; i++ {
		mustRead(t, c, id, ModeOptimistic)
		mustWrite(t, c, id, sess("n", pi(int64(i))), 0)
	}
	// A second daemon with a cold cache only reads the index.
	b := mk()
	cb := b.NewClient("cb")
	defer cb.Close()
	mustRead(t, cb, id, ModeOptimistic)
	if n := st.saves() - before; n != 0 {
		t.Fatalf("%d index saves for 21 requests, want 0", n)
	}
	// A session whose expiry outruns the index's lead rewrites it once.
	mustRead(t, c, id, ModeOptimistic)
	if _, err := c.Write(bg, WriteRequest{ID: id, Data: []byte(sess("n", pi(99))), TTL: 10 * DefaultTTL}); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, id, ModeOptimistic)
	if _, err := c.Write(bg, WriteRequest{ID: id, Data: []byte(sess("n", pi(100))), TTL: 10 * DefaultTTL}); err != nil {
		t.Fatal(err)
	}
	if n := st.saves() - before; n != 1 {
		t.Fatalf("%d index saves after outrunning it, want 1", n)
	}
}
