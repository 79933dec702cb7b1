package security

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/internal/testserver"
)

// logSink collects log records as JSON lines.
type logSink struct {
	testserver.SyncBuffer
}

func (l *logSink) lines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newSignals(t *testing.T, o Options) (*Signals, *logSink) {
	t.Helper()
	sink := &logSink{}
	o.Logger = slog.New(slog.NewJSONHandler(sink, nil))
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s, sink
}

func TestRateLimitedLogging(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)}
	s, sink := newSignals(t, Options{LogEvery: time.Minute, now: clk.now, Host: "web1"})
	for i := 0; i < 100; i++ {
		s.Report(KindInvalidID, "tcp:203.0.113.7", "../../etc/passwd", "bad byte")
	}
	s.Report(KindInvalidID, "tcp:198.51.100.1", "x/y", "bad byte")
	s.Report(KindUnknownID, "tcp:203.0.113.7", "abcdefabcdefabcdefabcdefabcdef12", "strict mode")
	if got := len(sink.lines("security event")); got != 3 {
		t.Fatalf("%d log lines, want 3 (one per kind+source)", got)
	}
	clk.advance(61 * time.Second)
	s.Report(KindInvalidID, "tcp:203.0.113.7", "again", "bad byte")
	lines := sink.lines("security event")
	if len(lines) != 4 {
		t.Fatalf("%d log lines after the interval, want 4", len(lines))
	}
	last := lines[3]
	if last["suppressed_since_last"] != float64(99) || last["count"] != float64(101) {
		t.Fatalf("last line %v: want suppressed 99, count 101", last)
	}
	unknown := lines[2]
	if _, leaked := unknown["id"]; leaked || unknown["id_hash"] != HashID("abcdefabcdefabcdefabcdefabcdef12") {
		t.Fatalf("unknown id logged verbatim or without hash: %v", unknown)
	}
	if c := s.Counts(); c[KindInvalidID] != 102 || c[KindUnknownID] != 1 || c[KindAuthFailure] != 0 {
		t.Fatalf("counts %v", c)
	}
	if n := s.SourceCount(KindInvalidID, "tcp:203.0.113.7"); n != 101 {
		t.Fatalf("source count %d", n)
	}
}

func TestSourceTableBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	s, _ := newSignals(t, Options{MaxSources: 3, LogEvery: time.Minute, now: clk.now})
	for _, src := range []string{"a", "b", "c", "d", "e"} {
		s.Report(KindAuthFailure, src, "", "")
	}
	// The table holds MaxSources entries plus one "other" per kind.
	if s.SourceCount(KindAuthFailure, "other") != 2 || len(s.sources) != 4 {
		t.Fatalf("sources %d, other %d", len(s.sources), s.SourceCount(KindAuthFailure, "other"))
	}
	clk.advance(2 * time.Minute)
	s.Report(KindAuthFailure, "f", "", "")
	if s.SourceCount(KindAuthFailure, "f") != 1 {
		t.Fatal("stale sources were not evicted for a new one")
	}
}

func TestHookRefusesNonLoopback(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"http://example.com/hook", "http://10.0.0.1:8080/", "https://[2001:db8::1]/", "http://user:pw@127.0.0.1/",
		"ftp://127.0.0.1/", "relative/script.sh", "/nonexistent/hook", notExec,
	} {
		if err := ValidateHook(bad); err == nil {
			t.Errorf("ValidateHook(%q) accepted", bad)
		}
		if _, err := New(Options{Hook: bad}); err == nil {
			t.Errorf("New with hook %q succeeded", bad)
		}
	}
	for _, good := range []string{"http://127.0.0.1:9/x", "http://localhost/", "https://[::1]:8443/h", "http://127.3.4.5/"} {
		if err := ValidateHook(good); err != nil {
			t.Errorf("ValidateHook(%q): %v", good, err)
		}
	}
}

func TestHTTPHook(t *testing.T) {
	got := make(chan Event, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := DecodeEvent(body)
		if err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("hook payload %q: %v", body, err)
		}
		got <- ev
	}))
	defer srv.Close()
	s, _ := newSignals(t, Options{Hook: srv.URL + "/events", Host: "web1"})
	s.Report(KindAuthFailure, "tcp:127.0.0.1:5555", "", "invalid token")
	select {
	case ev := <-got:
		if ev.Kind != KindAuthFailure || ev.Source != "tcp:127.0.0.1:5555" || ev.Count != 1 || ev.Host != "web1" || ev.V != 1 {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("hook not called")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if hs := s.HookStats(); hs.Delivered != 1 || hs.Failed != 0 {
		t.Fatalf("hook stats %+v", hs)
	}
}

func TestHTTPHookFailureCounted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusInternalServerError)
	}))
	defer srv.Close()
	s, sink := newSignals(t, Options{Hook: srv.URL})
	s.Report(KindFingerprintMismatch, "tcp:127.0.0.1", "sessid", "user agent changed")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Close(ctx)
	if hs := s.HookStats(); hs.Failed != 1 {
		t.Fatalf("hook stats %+v", hs)
	}
	if len(sink.lines("security hook failed")) != 1 {
		t.Fatal("hook failure not logged")
	}
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCommandHook(t *testing.T) {
	out := t.TempDir()
	script := writeScript(t, `cat > "$1/event-$$.json.tmp" && mv "$1/event-$$.json.tmp" "$1/event-$$.json"; env > "$1/env-$$"`)
	t.Setenv(EnvForTest, "secret-must-not-leak")
	s, _ := newSignals(t, Options{Hook: script + " " + out, HookConcurrency: 2})
	s.Report(KindInvalidID, "unix", "bad\x00id", "byte 0x00 at 3")
	s.Report(KindUnknownID, "unix", "abc", "strict")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(out, "event-*.json"))
	if len(files) != 2 {
		t.Fatalf("%d event files, want 2 (stats %+v)", len(files), s.HookStats())
	}
	kinds := map[Kind]Event{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		ev, err := DecodeEvent(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		kinds[ev.Kind] = ev
	}
	if ev := kinds[KindInvalidID]; ev.ID != "bad?id" || ev.IDHash != HashID("bad\x00id") {
		t.Fatalf("invalid id event %+v", ev)
	}
	if ev := kinds[KindUnknownID]; ev.ID != "" || ev.IDHash == "" {
		t.Fatalf("unknown id event leaks the id: %+v", ev)
	}
	envs, _ := filepath.Glob(filepath.Join(out, "env-*"))
	for _, f := range envs {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("secret-must-not-leak")) {
			t.Fatal("hook inherited the daemon's environment")
		}
	}
}

// EnvForTest is set in the daemon's environment to prove hooks do not see it.
const EnvForTest = "PHPSESSD_TEST_SECRET"

func TestCommandHookTimeoutAndClose(t *testing.T) {
	script := writeScript(t, `exec sleep 30`)
	s, _ := newSignals(t, Options{Hook: script, HookTimeout: 200 * time.Millisecond, HookConcurrency: 1, HookQueue: 2})
	start := time.Now()
	for i := 0; i < 6; i++ {
		s.Report(KindAuthFailure, "src"+string(rune('a'+i)), "", "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	err := s.Close(ctx)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %v with a hanging hook", took)
	}
	hs := s.HookStats()
	if hs.Delivered != 0 || hs.Failed == 0 || hs.Dropped == 0 {
		t.Fatalf("hook stats %+v (close err %v)", hs, err)
	}
	// Reports after Close still count and never block.
	s.Report(KindAuthFailure, "late", "", "")
	if s.Counts()[KindAuthFailure] != 7 {
		t.Fatal("report after close not counted")
	}
}
