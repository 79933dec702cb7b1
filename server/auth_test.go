package server

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/protocol"
)

func TestAuthTCP(t *testing.T) {
	env := startServer(t, nil)
	c, err := protocol.Dial(ctx5(t), env.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wantSimple(t, do(t, c, "PING"), "PONG") // allowed before auth
	doErr(t, c, "NOAUTH", "READ", "abcdefghijklmnopqrstuv")
	doErr(t, c, "NOAUTH", "CREATEID")
	doErr(t, c, "NOAUTH", "STATS")
	doErr(t, c, "NOAUTH", "HELLO", 1)
	doErr(t, c, "WRONGPASS", "AUTH", "guess")
	doErr(t, c, "WRONGPASS", "AUTH", testToken+"x")
	doErr(t, c, "WRONGPASS", "HELLO", 1, "AUTH", "guess")
	doErr(t, c, "ERR", "HELLO", 2, "AUTH", testToken)
	doErr(t, c, "NOAUTH", "CREATEID")
	hello, err := c.Hello(ctx5(t), testToken, "php-fpm")
	if err != nil {
		t.Fatal(err)
	}
	if hello["server"] != "phpsessd" || hello["version"] != "1.2.3-test" || hello["proto"] != "1" || hello["id"] == "" {
		t.Fatalf("HELLO = %v", hello)
	}
	if id := do(t, c, "CREATEID").Text(); len(id) != 32 {
		t.Fatalf("CREATEID after auth = %q", id)
	}

	// Plain AUTH works too.
	c2, err := protocol.Dial(ctx5(t), env.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	wantSimple(t, do(t, c2, "AUTH", testToken), "OK")
	do(t, c2, "CREATEID")

	var st AllStats
	if err := json.Unmarshal(do(t, c, "STATS").Str, &st); err != nil {
		t.Fatal(err)
	}
	if st.Server.AuthFailures < 3 || st.Server.Errors["NOAUTH"] == 0 {
		t.Fatalf("auth stats %+v", st.Server)
	}
}

func TestAuthUnix(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, env.unix)
	do(t, c, "CREATEID") // unix sockets rely on file permissions
	doErr(t, c, "WRONGPASS", "AUTH", "guess")
	wantSimple(t, do(t, c, "AUTH", testToken), "OK")
	hello, err := c.Hello(ctx5(t), "", "")
	if err != nil || hello["proto"] != "1" {
		t.Fatalf("HELLO without auth on unix: %v %v", hello, err)
	}
}

func TestTCPWithoutTokenRefused(t *testing.T) {
	st := newEngine(t)
	base := Config{Engine: st, Logger: testLogger(t)}

	cfg := base
	cfg.Listen = []string{"tcp://127.0.0.1:0"}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("TCP without token: %v", err)
	}

	cfg.InsecureNoAuth = true
	cfg.Listen = []string{"tcp://0.0.0.0:0"}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("insecure on 0.0.0.0: %v", err)
	}

	cfg.Listen = []string{"tcp://127.0.0.1:0"}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("insecure on loopback: %v", err)
	}
	srv.Start()
	defer srv.Shutdown(context.Background())
	c, err := protocol.Dial(ctx5(t), srv.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if id := do(t, c, "CREATEID").Text(); len(id) != 32 {
		t.Fatalf("CREATEID = %q", id)
	}
}

// newEngine returns an engine over a fresh memory store, closed at cleanup.
func newEngine(t testing.TB) *engine.Engine {
	t.Helper()
	s, err := handlers.Open(context.Background(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	ecfg := engine.NewConfig(s)
	ecfg.Logger = testLogger(t)
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func TestUnixSocketFile(t *testing.T) {
	eng := newEngine(t)
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "s.sock")

	// A stale socket left by a crashed daemon is replaced.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	srv, err := New(Config{Engine: eng, Listen: []string{"unix://" + sock}, Logger: testLogger(t), SocketMode: 0o600})
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	srv.Start()
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v %v, want 0600", fi.Mode(), err)
	}

	// A live one is not stolen.
	if _, err := New(Config{Engine: eng, Listen: []string{"unix://" + sock}, Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("live socket: %v", err)
	}
	c := dial(t, "unix://"+sock)
	wantSimple(t, do(t, c, "PING"), "PONG") // still served by the first server
	if err := srv.Shutdown(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket file left after shutdown: %v", err)
	}

	// Default mode is 0660; a regular file in the way is never removed.
	srv, err = New(Config{Engine: eng, Listen: []string{"unix://" + sock}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(sock); fi.Mode().Perm() != 0o660 {
		t.Fatalf("default socket mode %v", fi.Mode())
	}
	srv.Shutdown(ctx5(t))

	// The socket group is applied (to our own group, which needs no
	// privilege); an unknown group is a configuration error.
	gid := os.Getgid()
	srv, err = New(Config{Engine: eng, Listen: []string{"unix://" + sock}, Logger: testLogger(t), SocketGroup: strconv.Itoa(gid)})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(sock); int(fi.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Fatalf("socket group %v, want %d", fi.Sys(), gid)
	}
	srv.Shutdown(ctx5(t))
	if _, err := New(Config{Engine: eng, Listen: []string{"unix://" + sock}, Logger: testLogger(t), SocketGroup: "no-such-group-xyz"}); err == nil {
		t.Fatal("unknown socket group accepted")
	}
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("keep me"), 0o644)
	if _, err := New(Config{Engine: eng, Listen: []string{"unix://" + plain}, Logger: testLogger(t)}); err == nil {
		t.Fatal("listened over a regular file")
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep me" {
		t.Fatal("regular file clobbered")
	}
}
