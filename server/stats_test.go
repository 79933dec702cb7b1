package server

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"
)

// The STATS reply is read by scripts and the PHP tests by key name, so
// both halves must use the documented snake_case keys, not Go's names.
func TestStatsKeysOverTheWire(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, env.unix)
	holder, waiter := dial(t, env.unix), dial(t, env.unix)
	id := do(t, c, "CREATEID").Text()
	writeReply(t, do(t, c, "WRITE", id, "a|i:1;", "FORMAT", "php"), "written")
	session(t, do(t, holder, "READ", id, "MODE", "locked", "FORMAT", "php"), "locked")
	doErr(t, waiter, "LOCKTIMEOUT", "READ", id, "MODE", "locked", "FORMAT", "php", "WAIT", 50)
	// A waiter that is still queued when the holder releases gets the
	// lock handed to it, which lock_hand_offs counts.
	got := make(chan error, 1)
	go func() {
		_, err := waiter.Do(ctx5(t), "READ", id, "MODE", "locked", "FORMAT", "php", "WAIT", 5000)
		got <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); env.eng.Stats().LockWaits < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	wantSimple(t, do(t, holder, "CLOSE", id), "OK")
	if err := <-got; err != nil {
		t.Fatalf("queued locked READ: %v", err)
	}

	var st map[string]map[string]json.RawMessage
	raw := do(t, c, "STATS").Str
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("STATS json: %v: %s", err, raw)
	}
	num := func(part, key string) int64 {
		t.Helper()
		v, ok := st[part][key]
		if !ok {
			t.Fatalf("STATS %s has no %q: %s", part, key, raw)
		}
		var n int64
		if err := json.Unmarshal(v, &n); err != nil {
			t.Fatalf("STATS %s.%s = %s: %v", part, key, v, err)
		}
		return n
	}
	if n := num("engine", "reads"); n < 2 {
		t.Errorf("engine.reads = %d, want >= 2", n)
	}
	if n := num("engine", "lock_timeouts"); n != 1 {
		t.Errorf("engine.lock_timeouts = %d, want 1", n)
	}
	if n := num("engine", "lock_hand_offs"); n != 1 {
		t.Errorf("engine.lock_hand_offs = %d, want 1", n)
	}
	if n := num("engine", "locks_held"); n != 1 {
		t.Errorf("engine.locks_held = %d, want 1 (the waiter's)", n)
	}
	if n := num("server", "connections"); n < 3 {
		t.Errorf("server.connections = %d", n)
	}
	for part, keys := range st {
		for k := range keys {
			if k != strings.ToLower(k) {
				t.Errorf("STATS %s key %q is not snake_case", part, k)
			}
		}
	}
	var engineKeys []string
	for k := range st["engine"] {
		engineKeys = append(engineKeys, k)
	}
	sort.Strings(engineKeys)
	want := "clients conflicts conflicts_fail conflicts_mine conflicts_theirs dropped invalid_ids lock_hand_offs lock_timeouts lock_waits locks_held merges reads regenerates swept unchanged unknown_ids writes"
	if got := strings.Join(engineKeys, " "); got != want {
		t.Errorf("STATS engine keys\n got %s\nwant %s (PROTOCOL.md documents them)", got, want)
	}
}
