package redis

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/internal/testserver"
)

// needPHPRedis skips (or, with PHPSESSD_REQUIRE_PHP=1, fails) when the PHP
// CLI or its redis extension is missing.
func needPHPRedis(t *testing.T) {
	t.Helper()
	testserver.Need(t, "/usr/bin/php")
	out, err := exec.Command("php", "-m").Output()
	if err == nil && strings.Contains(string(out), "\nredis\n") {
		return
	}
	if os.Getenv("PHPSESSD_REQUIRE_PHP") == "1" {
		t.Fatal("the PHP redis extension is required (PHPSESSD_REQUIRE_PHP=1) but not loaded")
	}
	t.Skip("PHP redis extension not loaded")
}

// runPHPSession runs code under PHP's native phpredis session handler.
func runPHPSession(t *testing.T, handler, savePath, code string, ini ...string) string {
	t.Helper()
	cmd := phpCommand(handler, savePath, code, ini...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("php: %v\n%s%s", err, stderr.String(), out)
	}
	return string(out)
}

func phpCommand(handler, savePath, code string, ini ...string) *exec.Cmd {
	args := []string{
		"-d", "session.save_handler=" + handler,
		"-d", `session.save_path="` + savePath + `"`,
		"-d", "session.use_cookies=0", "-d", "session.use_strict_mode=0",
		"-d", "session.gc_maxlifetime=1440", "-d", "display_errors=stderr",
	}
	for _, kv := range ini {
		args = append(args, "-d", kv)
	}
	return exec.Command("php", append(args, "-r", code)...)
}

// TestPHPRedisInterop: PHP's own redis session handler and the store read
// each other's sessions byte for byte.
func TestPHPRedisInterop(t *testing.T) {
	needPHPRedis(t)
	srv := startRedis(t)
	s := srv.openStore(t, "")
	ctx := ctxT(t)
	savePath := "tcp://" + srv.Addr

	runPHPSession(t, "redis", savePath, `session_id("phpinterop1"); session_start(); $_SESSION["user"] = "alice"; $_SESSION["n"] = 3; session_write_close();`)
	rec, err := s.Load(ctx, "phpinterop1")
	if err != nil {
		t.Fatalf("Load of a session PHP wrote: %v", err)
	}
	if want := `user|s:5:"alice";n|i:3;`; string(rec.Data) != want {
		t.Fatalf("store read %q, PHP wrote %q", rec.Data, want)
	}
	if d := time.Until(rec.Expires); d < 1400*time.Second || d > 1440*time.Second {
		t.Fatalf("expiry in %v, want PHP's gc_maxlifetime of 1440s", d)
	}

	next := []byte(`user|s:5:"alice";n|i:4;cart|a:1:{i:0;s:3:"tea";}`)
	if _, err := s.Save(ctx, "phpinterop1", handlers.Record{Data: next, Expires: time.Now().Add(time.Hour)}, rec.Version); err != nil {
		t.Fatal(err)
	}
	out := runPHPSession(t, "redis", savePath, `session_id("phpinterop1"); session_start(); echo session_encode(); $_SESSION["n"]++; session_write_close();`)
	if out != string(next) {
		t.Fatalf("PHP read %q, store wrote %q", out, next)
	}
	// PHP's write after ours is seen, and our stale version now loses.
	rec2, err := s.Load(ctx, "phpinterop1")
	if err != nil || !strings.Contains(string(rec2.Data), "n|i:5;") {
		t.Fatalf("Load after PHP's write = %q, %v", rec2.Data, err)
	}
	if _, err := s.Save(ctx, "phpinterop1", handlers.Record{Data: []byte("x|i:0;")}, rec.Version); err == nil {
		t.Fatal("a stale version won over PHP's write")
	}
}

// phpRedisClusterInterop: phpredis's rediscluster handler and the store in
// the phpredis layout share sessions on a real cluster (run from
// TestCluster, which owns the cluster).
func phpRedisClusterInterop(t *testing.T, c *cluster) {
	needPHPRedis(t)
	s := openURL(t, c.url("layout=phpredis"))
	ctx := ctxT(t)
	savePath := "seed[]=" + c.nodes[0].Addr + "&seed[]=" + c.nodes[1].Addr
	runPHPSession(t, "rediscluster", savePath, `session_id("phpcluster1"); session_start(); $_SESSION["a"] = 1; session_write_close();`)
	rec, err := s.Load(ctx, "phpcluster1")
	if err != nil || string(rec.Data) != "a|i:1;" {
		t.Fatalf("Load of a session phpredis wrote to the cluster = %q, %v", rec.Data, err)
	}
	if _, err := s.Save(ctx, "phpcluster1", handlers.Record{Data: []byte("a|i:2;"), Expires: time.Now().Add(time.Hour)}, rec.Version); err != nil {
		t.Fatal(err)
	}
	if out := runPHPSession(t, "rediscluster", savePath, `session_id("phpcluster1"); session_start(); echo session_encode();`); out != "a|i:2;" {
		t.Fatalf("PHP read %q from the cluster", out)
	}
}

// TestPHPRedisLockInterop: in the phpredis layout our lock key is
// phpredis's, so a lock held on either side excludes the other.
func TestPHPRedisLockInterop(t *testing.T) {
	needPHPRedis(t)
	srv := startRedis(t)
	s := srv.openStore(t, "")
	raw := srv.newClient(t)
	ctx := ctxT(t)
	savePath := "tcp://" + srv.Addr
	locking := []string{"redis.session.locking_enabled=1", "redis.session.lock_retries=1000",
		"redis.session.lock_wait_time=10000", "redis.session.lock_expire=1"}

	// phpsessd holds the lock: PHP's session_start waits for the release.
	lk, err := s.Locker().AcquireLock(ctx, "phplock1", "go", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(400 * time.Millisecond)
		_ = lk.Release()
		released <- time.Now()
	}()
	runPHPSession(t, "redis", savePath, `session_id("phplock1"); session_start(); $_SESSION["x"] = 1; session_write_close();`, locking...)
	phpDone := time.Now()
	if rel := <-released; phpDone.Before(rel) {
		t.Fatal("PHP got the session lock while phpsessd held it")
	}

	// PHP holds the lock for 600 ms: our waiter gets it only afterwards.
	cmd := phpCommand("redis", savePath, `session_id("phplock2"); session_start(); usleep(600000); session_write_close();`, locking...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	waitFor(t, "PHP to take the lock", func() bool { return raw.Exists(ctx, "PHPREDIS_SESSION:phplock2_LOCK").Val() == 1 })
	start := time.Now()
	lk2, err := s.Locker().AcquireLock(ctx, "phplock2", "go", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Fatalf("got the lock after %v while PHP held it for 600ms", waited)
	}
	_ = lk2.Release()
}
