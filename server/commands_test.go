package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/protocol"
)

// TestSessionCommands drives every session, id, op and admin command over
// a real unix socket and a real TCP connection.
func TestSessionCommands(t *testing.T) {
	env := startServer(t, nil)
	for name, addr := range map[string]string{"unix": env.unix, "tcp": env.tcp} {
		t.Run(name, func(t *testing.T) { sessionFlow(t, env, addr) })
	}
}

func sessionFlow(t *testing.T, env *testEnv, addr string) {
	c := dial(t, addr)
	other := dial(t, addr)

	wantSimple(t, do(t, c, "PING"), "PONG")
	if rep := do(t, c, "ping", "hi there"); rep.Kind != protocol.KindBulk || rep.Text() != "hi there" {
		t.Fatalf("PING message: %s", rep)
	}

	// Ids.
	id := do(t, c, "CREATEID").Text()
	if len(id) != 32 {
		t.Fatalf("CREATEID = %q, want 32 chars", id)
	}
	if id6 := do(t, c, "CREATEID", "LENGTH", 40, "BITS", 6).Text(); len(id6) != 40 {
		t.Fatalf("CREATEID LENGTH 40 = %q", id6)
	}
	doErr(t, c, "ERR", "CREATEID", "LENGTH", 5)
	doErr(t, c, "ERR", "CREATEID", "BITS", 7)
	wantInt(t, do(t, c, "VALIDATE", id), 0) // strict: not a session yet
	doErr(t, c, "INVALIDID", "VALIDATE", "../../etc/passwd")

	// READ of a new session, then WRITE.
	data, v := session(t, do(t, c, "READ", id, "FORMAT", "php", "TTL", 100, "METHOD", "GET", "PATH", "/cart"), "optimistic")
	if data != "" || v != 0 {
		t.Fatalf("new session read %q v%d", data, v)
	}
	v1 := writeReply(t, do(t, c, "WRITE", id, "a|i:1;", "BASE", v, "FORMAT", "php", "TTL", 100), "written")
	if v1 == 0 {
		t.Fatal("WRITE returned version 0")
	}
	wantInt(t, do(t, c, "VALIDATE", id), 1)
	wantSimple(t, do(t, c, "CLOSE", id), "OK")

	// Same bytes again: lazy write.
	data, v = session(t, do(t, c, "read", id, "format", "php"), "optimistic")
	if data != "a|i:1;" || v != v1 {
		t.Fatalf("read back %q v%d, want a|i:1; v%d", data, v, v1)
	}
	writeReply(t, do(t, c, "WRITE", id, "a|i:1;", "BASE", v1, "FORMAT", "php"), "unchanged")

	// Concurrent change: merged.
	session(t, do(t, c, "READ", id, "FORMAT", "php"), "optimistic")
	session(t, do(t, other, "READ", id, "FORMAT", "php"), "optimistic")
	writeReply(t, do(t, other, "WRITE", id, "a|i:1;b|i:2;", "FORMAT", "php"), "written")
	v2 := writeReply(t, do(t, c, "WRITE", id, "a|i:1;c|i:3;", "FORMAT", "php"), "merged")
	data, _ = session(t, do(t, c, "READ", id, "FORMAT", "php"), "optimistic")
	if !strings.Contains(data, "b|i:2;") || !strings.Contains(data, "c|i:3;") {
		t.Fatalf("merged data %q lacks a side", data)
	}
	_ = v2

	// Read-only requests cannot change data.
	session(t, do(t, c, "READ", id, "MODE", "readonly", "FORMAT", "php"), "readonly")
	writeReply(t, do(t, c, "WRITE", id, "z|i:9;", "FORMAT", "php"), "dropped")

	// TOUCH.
	wantInt(t, do(t, c, "TOUCH", id, "TTL", 50), 1)
	wantInt(t, do(t, c, "TOUCH", id), 1)
	wantInt(t, do(t, c, "TOUCH", "nosuchsession0123456789"), 0)

	// Lockless ops.
	wantInt(t, do(t, c, "INCR", id, "n"), 1)
	wantInt(t, do(t, c, "INCR", id, "n", "BY", 5), 6)
	wantInt(t, do(t, c, "INCR", id, "n", "BY", -2), 4)
	wantInt(t, do(t, c, "APPEND", id, "s", "ab"), 2)
	wantInt(t, do(t, c, "APPEND", id, "s", "c"), 3)
	wantInt(t, do(t, c, "PUSH", id, "l", "i:7;"), 1)
	wantInt(t, do(t, c, "PUSH", id, "l", `s:1:"x";`), 2)
	wantSimple(t, do(t, c, "SET", id, "k", `s:2:"hi";`), "OK")
	wantInt(t, do(t, c, "UNSET", id, "k"), 1)
	wantInt(t, do(t, c, "UNSET", id, "k"), 0)
	doErr(t, c, "ERR", "INCR", id, "s")
	doErr(t, c, "ERR", "INCR", id, "n", "BY", "x")
	data, _ = session(t, do(t, other, "READ", id, "FORMAT", "php"), "optimistic")
	for _, want := range []string{"n|i:4;", `s|s:3:"abc";`, "l|a:2:{"} {
		if !strings.Contains(data, want) {
			t.Fatalf("after ops data %q lacks %q", data, want)
		}
	}
	wantSimple(t, do(t, other, "CLOSE", id), "OK")

	// INFO.
	var info map[string]any
	if err := json.Unmarshal(do(t, c, "INFO", id).Str, &info); err != nil {
		t.Fatalf("INFO json: %v", err)
	}
	if info["exists"] != true || info["id"] != id {
		t.Fatalf("INFO = %v", info)
	}

	// LOCK: exclusive until CLOSE; a waiter times out, then gets it.
	ldata, _ := session(t, do(t, c, "LOCK", id, "DATA", data, "FORMAT", "php", "WAIT", 1000), "locked")
	if !strings.Contains(ldata, "n|i:4;") {
		t.Fatalf("LOCK data %q", ldata)
	}
	start := time.Now()
	doErr(t, other, "LOCKTIMEOUT", "READ", id, "MODE", "locked", "FORMAT", "php", "WAIT", 100)
	if d := time.Since(start); d < 80*time.Millisecond || d > 3*time.Second {
		t.Fatalf("lock wait took %v, want about 100ms", d)
	}
	wantSimple(t, do(t, c, "CLOSE", id), "OK")
	session(t, do(t, other, "READ", id, "MODE", "locked", "FORMAT", "php", "WAIT", 1000), "locked")
	wantSimple(t, do(t, other, "CLOSE", id), "OK")

	// REGENERATE: the data moves, the old id stays an alias.
	nid := do(t, c, "REGENERATE", id, "LENGTH", 26, "BITS", 5, "GRACE", 5000).Text()
	if nid == id || len(nid) != 26 {
		t.Fatalf("REGENERATE = %q", nid)
	}
	ndata, _ := session(t, do(t, c, "READ", nid, "FORMAT", "php"), "optimistic")
	if ndata == "" {
		t.Fatal("regenerated session is empty")
	}
	wantInt(t, do(t, c, "VALIDATE", id), 1)

	// DESTROY, GC.
	wantInt(t, do(t, c, "DESTROY", nid), 1)
	wantInt(t, do(t, c, "DESTROY", nid), 0)
	if rep := do(t, c, "GC", 1440); rep.Kind != protocol.KindInt || rep.Int < 0 {
		t.Fatalf("GC = %s", rep)
	}

	// STATS.
	var st AllStats
	if err := json.Unmarshal(do(t, c, "STATS").Str, &st); err != nil {
		t.Fatalf("STATS json: %v", err)
	}
	if st.Server.Commands["READ"] == 0 || st.Server.Connections < 2 || st.Engine.Reads == 0 || st.Server.Errors["LOCKTIMEOUT"] == 0 {
		t.Fatalf("STATS = %+v", st)
	}

	// Argument errors keep the connection usable.
	doErr(t, c, "ERR", "READ")
	doErr(t, c, "ERR", "READ", id, "MODE", "sideways")
	doErr(t, c, "ERR", "READ", id, "COLOUR", "red")
	doErr(t, c, "ERR", "READ", id, "TTL")
	doErr(t, c, "ERR", "READ", id, "TTL", "-1")
	doErr(t, c, "ERR", "READ", id, "TTL", 1, "ttl", 2)
	doErr(t, c, "ERR", "GC", "soon")
	doErr(t, c, "ERR", "FLUSHALL")
	doErr(t, c, "INVALIDID", "READ", "bad/id")
	doErr(t, c, "INVALIDID", "WRITE", "bad id", "x")
	wantSimple(t, do(t, c, "PING"), "PONG")

	// QUIT answers, then closes.
	wantSimple(t, do(t, c, "QUIT"), "OK")
	if _, err := c.Do(ctx5(t), "PING"); err == nil {
		t.Fatal("connection still open after QUIT")
	}
}

func TestConflictTooBigBackend(t *testing.T) {
	env := startServer(t, func(_ *Config, e *engine.Config) {
		e.KeyRules = []engine.KeyRule{{Pattern: "cart", Rule: engine.RuleFail}}
		e.MaxDataSize = 1024
	})
	a, b := dial(t, env.unix), dial(t, env.unix)
	id := do(t, a, "CREATEID").Text()
	writeReply(t, do(t, a, "WRITE", id, "cart|i:0;", "FORMAT", "php"), "written")
	session(t, do(t, a, "READ", id, "FORMAT", "php"), "optimistic")
	session(t, do(t, b, "READ", id, "FORMAT", "php"), "optimistic")
	writeReply(t, do(t, a, "WRITE", id, "cart|i:1;", "FORMAT", "php"), "written")
	se := doErr(t, b, "CONFLICT", "WRITE", id, "cart|i:2;", "FORMAT", "php")
	if se.Message != id+" cart" {
		t.Fatalf("CONFLICT message %q, want %q", se.Message, id+" cart")
	}

	big := `x|s:2000:"` + strings.Repeat("y", 2000) + `";`
	doErr(t, a, "TOOBIG", "WRITE", id, big, "FORMAT", "php")
	wantSimple(t, do(t, a, "PING"), "PONG") // engine TOOBIG keeps the connection

	env.store.fail.Store(true)
	doErr(t, a, "BACKEND", "READ", "freshsession0123456789ab", "FORMAT", "php")
	env.store.fail.Store(false)
	session(t, do(t, a, "READ", id, "FORMAT", "php"), "optimistic")
}

// A connection that goes away releases its locks: the crash-release path
// for a PHP worker that dies mid-request.
func TestDisconnectReleasesLocks(t *testing.T) {
	env := startServer(t, nil)
	a, b := dial(t, env.unix), dial(t, env.unix)
	id := do(t, a, "CREATEID").Text()
	session(t, do(t, a, "READ", id, "MODE", "locked", "FORMAT", "php"), "locked")
	a.Close()
	start := time.Now()
	session(t, do(t, b, "READ", id, "MODE", "locked", "FORMAT", "php", "WAIT", 3000), "locked")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("lock released after %v", d)
	}
}

// Pipelined requests are answered in order.
func TestPipelining(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, env.unix)
	nc := c.Conn()
	w := protocol.NewWriter(nc)
	for i := 0; i < 50; i++ {
		w.WriteRequestStrings("PING", "m"+strings.Repeat("x", i))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := protocol.NewReader(nc, protocol.ClientLimits)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < 50; i++ {
		rep, err := r.ReadReply()
		if err != nil || rep.Text() != "m"+strings.Repeat("x", i) {
			t.Fatalf("reply %d: %v %s", i, err, rep)
		}
	}
}

// A reply never waits for the rest of a request that has only partly
// arrived behind it.
func TestReplyNotHeldByPartialFrame(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, env.unix)
	nc := c.Conn()
	if _, err := nc.Write([]byte("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nPING\r\n$5\r\nhel")); err != nil {
		t.Fatal(err)
	}
	r := protocol.NewReader(nc, protocol.ClientLimits)
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if rep, err := r.ReadReply(); err != nil || rep.Text() != "PONG" {
		t.Fatalf("first reply: %v %s", err, rep)
	}
	nc.Write([]byte("lo\r\n"))
	if rep, err := r.ReadReply(); err != nil || rep.Text() != "hello" {
		t.Fatalf("second reply: %v %s", err, rep)
	}
}
