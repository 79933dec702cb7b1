package memcached

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/storetest"
	"github.com/phpsessd/phpsessd/internal/testserver"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openT(t *testing.T, rawURL string) *Store {
	t.Helper()
	s, err := handlers.Open(ctxT(t), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*Store)
}

func set(t *testing.T, addr, key, val string, exp int32) {
	t.Helper()
	c := memcache.New(addr)
	defer c.Close()
	if err := c.Set(&memcache.Item{Key: key, Value: []byte(val), Expiration: exp}); err != nil {
		t.Fatal(err)
	}
}

func TestScanAndLoad(t *testing.T) {
	addr := testserver.StartMemcached(t).Addr
	ctx := ctxT(t)
	set(t, addr, "memc.sess.key.sessA", "a|i:1;", 600)
	set(t, addr, "memc.sess.key.sessB", "b|s:3:\"x\x00y\";", 0)
	set(t, addr, "memc.sess.key.s,C-1", "c|b:1;", 3000)
	set(t, addr, "memc.sess.key.lock.sessA", "1", 30) // php-memcached's lock key
	set(t, addr, "other:sessD", "not ours", 600)
	s := openT(t, "memcached://"+addr+"?prefix=memc.sess.key.")

	got := map[string]time.Time{}
	err := s.Scan(ctx, func(id string, exp time.Time) error {
		if _, dup := got[id]; dup {
			t.Errorf("%s reported twice", id)
		}
		got[id] = exp
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("Scan = %v, want sessA, sessB, s,C-1", got)
	}
	near := func(got time.Time, want time.Duration) bool {
		d := time.Until(got) - want
		return d > -3*time.Second && d < 3*time.Second
	}
	if !near(got["sessA"], 600*time.Second) || !got["sessB"].IsZero() || !near(got["s,C-1"], 3000*time.Second) {
		t.Fatalf("Scan expiries = %v", got)
	}

	rec, err := s.Load(ctx, "sessB")
	if err != nil || string(rec.Data) != "b|s:3:\"x\x00y\";" || !rec.Expires.IsZero() || rec.Version == 0 {
		t.Fatalf("Load(sessB) = %+v, %v", rec, err)
	}
	rec, err = s.Load(ctx, "s,C-1")
	if err != nil || string(rec.Data) != "c|b:1;" || !near(rec.Expires, 3000*time.Second) {
		t.Fatalf("Load(s,C-1) = %+v, %v", rec, err)
	}
	// Not seen by a Scan yet: the ttl rule.
	set(t, addr, "memc.sess.key.late", "l|i:0;", 100)
	if rec, err := s.Load(ctx, "late"); err != nil || !near(rec.Expires, DefaultTTL) {
		t.Fatalf("Load(late) = %+v, %v", rec, err)
	}
	if _, err := s.Load(ctx, "missing"); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("Load(missing) = %v", err)
	}

	stop := errors.New("stop")
	if err := s.Scan(ctx, func(string, time.Time) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Scan with failing fn = %v", err)
	}
}

func TestReadOnlyAndRefusals(t *testing.T) {
	addr := testserver.StartMemcached(t).Addr
	ctx := ctxT(t)
	s := openT(t, "memcached://"+addr)
	if _, err := s.Save(ctx, "abc", handlers.Record{Data: []byte("x")}, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Save = %v", err)
	}
	if err := s.Touch(ctx, "abc", time.Now()); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Touch = %v", err)
	}
	if _, err := s.Delete(ctx, "abc"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Delete = %v", err)
	}
	for _, id := range storetest.InvalidIDs {
		if _, err := s.Load(ctx, id); err == nil || errors.Is(err, handlers.ErrNotFound) {
			t.Errorf("Load(%q) = %v, want a refusal", id, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Load(cctx, "abc"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context = %v", err)
	}
	if err := s.Scan(cctx, func(string, time.Time) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a cancelled context = %v", err)
	}
	_ = s.Close()
	if _, err := s.Load(ctx, "abc"); !errors.Is(err, handlers.ErrUnavailable) {
		t.Errorf("Load after Close = %v", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	s := openT(t, "memcached://127.0.0.1:1?op_timeout=500ms")
	ctx := ctxT(t)
	if err := s.Scan(ctx, func(string, time.Time) error { return nil }); !errors.Is(err, handlers.ErrUnavailable) {
		t.Errorf("Scan of a closed port = %v, want ErrUnavailable", err)
	}
	if _, err := s.Load(ctx, "abc"); !errors.Is(err, handlers.ErrUnavailable) {
		t.Errorf("Load from a closed port = %v, want ErrUnavailable", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, bad := range []string{"memcached://", "memcached://h:1/x", "memcached://h?ttl=0", "memcached://h?op_timeout=x", "memcached://h?nope=1"} {
		if s, err := handlers.Open(context.Background(), bad); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

// TestPHPMemcachedInterop reads a session PHP's memcached extension wrote.
func TestPHPMemcachedInterop(t *testing.T) {
	needPHPMemcached(t)
	addr := testserver.StartMemcached(t).Addr
	ctx := ctxT(t)
	out, err := exec.Command("php",
		"-d", "session.save_handler=memcached", "-d", "session.save_path="+addr,
		"-d", "session.use_cookies=0", "-d", "session.use_strict_mode=0",
		"-d", "session.gc_maxlifetime=1440", "-d", "display_errors=stderr",
		"-r", `session_id("phpmemc1"); session_start(); $_SESSION["u"] = "alice"; $_SESSION["bin"] = "x\0y"; session_write_close();`,
	).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("php: %v\n%s", err, out)
	}
	s := openT(t, "memcached://"+addr)
	var ids []string
	if err := s.Scan(ctx, func(id string, _ time.Time) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != "phpmemc1" {
		t.Fatalf("Scan = %v, want the one PHP session (no lock keys)", ids)
	}
	rec, err := s.Load(ctx, "phpmemc1")
	if want := "u|s:5:\"alice\";bin|s:3:\"x\x00y\";"; err != nil || string(rec.Data) != want {
		t.Fatalf("Load = %q, %v; PHP wrote %q", rec.Data, err, want)
	}
	if d := time.Until(rec.Expires); d < 1430*time.Second || d > 1442*time.Second {
		t.Fatalf("expires in %v, want PHP's gc_maxlifetime 1440s", d)
	}
}

func needPHPMemcached(t *testing.T) {
	t.Helper()
	out, err := exec.Command("php", "-m").Output()
	if err == nil && strings.Contains(string(out), "\nmemcached\n") {
		return
	}
	if os.Getenv("PHPSESSD_REQUIRE_PHP") == "1" {
		t.Fatalf("php-cli with the memcached extension is required (PHPSESSD_REQUIRE_PHP=1): %v", err)
	}
	t.Skip("php-cli or its memcached extension not installed")
}
