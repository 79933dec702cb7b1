package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	_ "github.com/phpsessd/phpsessd/handlers/redis"
	"github.com/phpsessd/phpsessd/internal/fpmtest"
	"github.com/phpsessd/phpsessd/protocol"
)

// newStoredSession creates a session with data over the protocol.
func newStoredSession(t *testing.T, c *protocol.Client, data string) string {
	t.Helper()
	id := do(t, c, "CREATEID").Text()
	session(t, do(t, c, "READ", id, "FORMAT", "php"), "optimistic")
	writeReply(t, do(t, c, "WRITE", id, data, "FORMAT", "php"), "written")
	do(t, c, "CLOSE", id)
	return id
}

func textArray(t *testing.T, rep protocol.Reply) []string {
	t.Helper()
	if rep.Kind != protocol.KindArray {
		t.Fatalf("want an array, got %s", rep)
	}
	out := make([]string, 0, len(rep.Array))
	for _, r := range rep.Array {
		out = append(out, r.Text())
	}
	return out
}

func TestRefCommands(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, env.unix)
	s1 := newStoredSession(t, c, "u|i:1;")
	s2 := newStoredSession(t, c, "u|i:1;")

	rep := do(t, c, "REF", "ADD", s1, "user:1")
	if got := textArray(t, rep); !slices.Equal(got, []string{"1", "0"}) {
		t.Fatalf("REF ADD: %v", got)
	}
	if got := textArray(t, do(t, c, "ref", "add", s1, "user:1")); !slices.Equal(got, []string{"0", "0"}) {
		t.Fatalf("REF ADD again: %v", got)
	}
	do(t, c, "REF", "ADD", s2, "user:1")
	want := []string{s1, s2}
	sort.Strings(want)
	if got := textArray(t, do(t, c, "REF", "LIST", "user:1")); !slices.Equal(got, want) {
		t.Fatalf("REF LIST: %v, want %v", got, want)
	}
	// INFO shows the references.
	if info := do(t, c, "INFO", s1).Text(); !strings.Contains(info, `"refs":["user:1"]`) {
		t.Fatalf("INFO lacks refs: %s", info)
	}
	wantInt(t, do(t, c, "REF", "DEL", s2, "user:1"), 1)
	wantInt(t, do(t, c, "REF", "DEL", s2, "user:1"), 0)
	if got := textArray(t, do(t, c, "REF", "LIST", "user:1")); !slices.Equal(got, []string{s1}) {
		t.Fatalf("REF LIST after DEL: %v", got)
	}
	// EXCLUSIVE: the new login ends the old one.
	if got := textArray(t, do(t, c, "REF", "ADD", s2, "user:1", "exclusive")); !slices.Equal(got, []string{"1", "1"}) {
		t.Fatalf("REF ADD EXCLUSIVE: %v", got)
	}
	wantInt(t, do(t, c, "VALIDATE", s1), 0)
	wantInt(t, do(t, c, "REF", "KILL", "user:1"), 1)
	wantInt(t, do(t, c, "VALIDATE", s2), 0)
	if got := textArray(t, do(t, c, "REF", "LIST", "user:1")); len(got) != 0 {
		t.Fatalf("REF LIST after KILL: %v", got)
	}

	// Argument errors leave the connection usable.
	s3 := newStoredSession(t, c, "u|i:3;")
	doErr(t, c, "ERR", "REF", "FROB", "x")
	doErr(t, c, "ERR", "REF", "ADD", s3)
	doErr(t, c, "ERR", "REF", "ADD", s3, "user:1", "SOMETIMES")
	doErr(t, c, "ERR", "REF", "LIST", "a", "b")
	doErr(t, c, "ERR", "REF", "ADD", s3, "has space")
	doErr(t, c, "INVALIDID", "REF", "ADD", "../etc", "user:1")
	doErr(t, c, "INVALIDID", "READ", "--phpsessd-ref-abc")
	do(t, c, "PING")

	// Over TCP the commands need auth like every other.
	tc, err := protocol.Dial(ctx5(t), env.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	doErr(t, tc, "NOAUTH", "REF", "LIST", "user:1")
	doErr(t, tc, "NOAUTH", "LIST")
}

func TestListCommand(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, env.unix)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, newStoredSession(t, c, "u|i:1;"))
	}
	do(t, c, "REF", "ADD", ids[0], "user:1") // an index record that LIST must skip
	sort.Strings(ids)
	var got []string
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		args := []any{"LIST", "LIMIT", 2}
		if cursor != "" {
			args = append(args, "CURSOR", cursor)
		}
		rep := do(t, c, args...)
		if rep.Kind != protocol.KindArray || len(rep.Array) != 2 {
			t.Fatalf("LIST reply %s", rep)
		}
		got = append(got, textArray(t, rep.Array[1])...)
		cursor = rep.Array[0].Text()
		if cursor == "" {
			break
		}
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("LIST pages %v, want %v", got, ids)
	}
	rep := do(t, c, "LIST")
	if all := textArray(t, rep.Array[1]); !slices.Equal(all, ids) || rep.Array[0].Text() != "" {
		t.Fatalf("LIST without limit: %s", rep)
	}
	doErr(t, c, "ERR", "LIST", "LIMIT", 100000)
	doErr(t, c, "ERR", "LIST", "LIMIT", "many")
	doErr(t, c, "ERR", "LIST", "ORDER", "asc")
}

// startServerOver runs a server over an existing store, the way two
// daemons share one Redis.
func startServerOver(t *testing.T, st handlers.Store) *testEnv {
	t.Helper()
	ecfg := engine.NewConfig(st)
	ecfg.Logger = testLogger(t)
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(shortTempDir(t), "p.sock")
	srv, err := New(Config{Engine: eng, Listen: []string{"unix://" + sock}, Logger: testLogger(t), Version: "test"})
	if err != nil {
		eng.Close()
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		eng.Close()
	})
	return &testEnv{srv: srv, eng: eng, unix: srv.Addrs()[0], sock: sock}
}

// Two daemons on one real Redis: references added on one are listed and
// killed from the other, and concurrent adds from both are all kept.
func TestRefsAcrossDaemonsOnRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("PHPSESSD_REQUIRE_PHP") == "1" {
			t.Fatal("redis-server not found and PHPSESSD_REQUIRE_PHP=1")
		}
		t.Skip("redis-server not found")
	}
	r, err := fpmtest.StartRedis(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	open := func() handlers.Store {
		st, err := handlers.Open(context.Background(), "redis://"+r.Addr+"/0")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	d1, d2 := startServerOver(t, open()), startServerOver(t, open())
	c1, c2 := dial(t, d1.unix), dial(t, d2.unix)

	const n = 12
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newStoredSession(t, c1, "u|i:1;")
	}
	other := newStoredSession(t, c2, "u|i:2;")
	errs := make(chan error, n)
	for i, id := range ids {
		go func(i int, id string) {
			addr := d1.unix
			if i%2 == 1 {
				addr = d2.unix
			}
			c, err := protocol.Dial(context.Background(), addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = c.Do(ctx, "REF", "ADD", id, "user:42")
			errs <- err
		}(i, id)
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	do(t, c2, "REF", "ADD", other, "user:7")
	want := slices.Clone(ids)
	sort.Strings(want)
	if got := textArray(t, do(t, c2, "REF", "LIST", "user:42")); !slices.Equal(got, want) {
		t.Fatalf("daemon 2 lists %d of %d sessions", len(got), n)
	}
	// LIST (the admin listing) skips the index records in Redis too.
	all := textArray(t, do(t, c1, "LIST", "LIMIT", 1000).Array[1])
	if len(all) != n+1 || slices.ContainsFunc(all, engine.IsReservedID) {
		t.Fatalf("LIST over Redis: %v", all)
	}
	wantInt(t, do(t, c1, "REF", "KILL", "user:42"), n)
	for _, id := range ids {
		wantInt(t, do(t, c2, "VALIDATE", id), 0)
	}
	wantInt(t, do(t, c2, "VALIDATE", other), 1)
	if got := textArray(t, do(t, c1, "REF", "LIST", "user:7")); !slices.Equal(got, []string{other}) {
		t.Fatalf("user:7 list %v", got)
	}
}
