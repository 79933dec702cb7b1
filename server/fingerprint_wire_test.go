package server

import (
	"slices"
	"sync"
	"testing"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/protocol"
)

func TestReadFingerprintOverTheWire(t *testing.T) {
	var mu sync.Mutex
	var kinds []string
	env := startServer(t, func(c *Config, e *engine.Config) {
		e.FingerprintUA, e.FingerprintIP = true, true
		c.Security = func(kind, source, id, reason string) {
			mu.Lock()
			defer mu.Unlock()
			kinds = append(kinds, kind+" "+reason)
		}
	})
	c := dial(t, env.unix)
	id := do(t, c, "CREATEID").Text()
	session(t, do(t, c, "READ", id, "FORMAT", "php", "UA", "Firefox", "IP", "192.0.2.10"), "optimistic")
	writeReply(t, do(t, c, "WRITE", id, "secret|i:1;", "FORMAT", "php"), "written")
	do(t, c, "CLOSE", id)

	data, _ := session(t, do(t, c, "READ", id, "FORMAT", "php", "UA", "Firefox", "IP", "192.0.2.99"), "optimistic")
	if data != "secret|i:1;" {
		t.Fatalf("same agent, same /24: %q", data)
	}
	do(t, c, "CLOSE", id)
	doErr(t, c, "FINGERPRINT", "READ", id, "FORMAT", "php", "UA", "curl", "IP", "192.0.2.10")
	doErr(t, c, "FINGERPRINT", "READ", id, "UA", "", "IP", "192.0.2.10")
	doErr(t, c, "FINGERPRINT", "READ", id, "MODE", "locked", "UA", "Firefox", "IP", "198.51.100.1")
	// Old clients without the keywords are never refused.
	data, _ = session(t, do(t, c, "READ", id, "FORMAT", "php"), "optimistic")
	if data != "secret|i:1;" {
		t.Fatalf("read without inputs: %q", data)
	}
	doErr(t, c, "ERR", "READ", id, "UA")
	mu.Lock()
	defer mu.Unlock()
	if len(kinds) != 3 || kinds[0] != "fingerprint_mismatch user agent changed" || kinds[2] != "fingerprint_mismatch IP prefix changed" {
		t.Fatalf("security signals %q", kinds)
	}
}

func TestReadFingerprintMoveOverTheWire(t *testing.T) {
	var mu sync.Mutex
	var kinds []string
	env := startServer(t, func(c *Config, e *engine.Config) {
		e.FingerprintUA, e.FingerprintIP = true, true
		e.FingerprintAction = engine.FingerprintRegenerate
		c.Security = func(kind, source, id, reason string) {
			mu.Lock()
			defer mu.Unlock()
			kinds = append(kinds, kind+" "+reason)
		}
	})
	c := dial(t, env.unix)
	id := do(t, c, "CREATEID").Text()
	// A new session is never moved: the reply keeps its three elements.
	session(t, do(t, c, "READ", id, "FORMAT", "php", "UA", "Firefox", "IP", "10.0.0.1", "MOVE", "1"), "optimistic")
	writeReply(t, do(t, c, "WRITE", id, "secret|i:1;", "FORMAT", "php"), "written")
	do(t, c, "CLOSE", id)

	// Without MOVE 1 the client cannot follow a move, so it is refused,
	// as is another browser whatever it says.
	doErr(t, c, "FINGERPRINT", "READ", id, "FORMAT", "php", "UA", "Firefox", "IP", "10.9.9.9")
	doErr(t, c, "FINGERPRINT", "READ", id, "FORMAT", "php", "UA", "Firefox", "IP", "10.9.9.9", "MOVE", "0")
	doErr(t, c, "FINGERPRINT", "READ", id, "FORMAT", "php", "UA", "curl", "IP", "10.9.9.9", "MOVE", "1")
	doErr(t, c, "ERR", "READ", id, "UA", "Firefox", "IP", "10.9.9.9", "MOVE", "yes")
	// Clients without inputs see the old reply shape.
	data, _ := session(t, do(t, c, "READ", id, "FORMAT", "php"), "optimistic")
	if data != "secret|i:1;" {
		t.Fatalf("read without inputs: %q", data)
	}
	do(t, c, "CLOSE", id)

	rep := do(t, c, "READ", id, "FORMAT", "php", "UA", "Firefox", "IP", "10.9.9.9", "MOVE", "1")
	if rep.Kind != protocol.KindArray || len(rep.Array) != 4 || rep.Array[3].Kind != protocol.KindBulk {
		t.Fatalf("moved READ reply %s, want four elements", rep)
	}
	nid := rep.Array[3].Text()
	if nid == id || len(nid) != len(id) || rep.Array[0].Text() != "secret|i:1;" ||
		rep.Array[1].Int <= 0 || rep.Array[2].Text() != "optimistic" {
		t.Fatalf("moved READ reply %s (old id %s)", rep, id)
	}
	writeReply(t, do(t, c, "WRITE", nid, "secret|i:2;", "FORMAT", "php", "BASE", rep.Array[1].Int), "written")
	do(t, c, "CLOSE", nid)

	// The old id is gone; the new one is bound to the new network.
	wantInt(t, do(t, c, "VALIDATE", id), 0)
	if data, v := session(t, do(t, c, "READ", id, "FORMAT", "php"), "optimistic"); data != "" || v != 0 {
		t.Fatalf("old id after the move: %q v%d", data, v)
	}
	do(t, c, "CLOSE", id)
	data, _ = session(t, do(t, c, "READ", nid, "FORMAT", "php", "UA", "Firefox", "IP", "10.9.9.77", "MOVE", "1"), "optimistic")
	if data != "secret|i:2;" {
		t.Fatalf("new id from the new network: %q", data)
	}
	do(t, c, "CLOSE", nid)

	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"fingerprint_mismatch IP prefix changed",
		"fingerprint_mismatch IP prefix changed",
		"fingerprint_mismatch user agent changed",
		"fingerprint_mismatch " + engine.FingerprintMovedReason,
		"unknown_id no such session (strict mode)", // the VALIDATE of the old id
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("security signals %q, want %q", kinds, want)
	}
}
