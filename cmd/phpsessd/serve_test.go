package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/internal/testserver"
	"github.com/phpsessd/phpsessd/protocol"
)

// syncBuffer holds the daemon's log while the test reads it.
type syncBuffer = testserver.SyncBuffer

func testEnv(vars map[string]string) (*cmdEnv, *syncBuffer, *syncBuffer) {
	out, errb := &syncBuffer{}, &syncBuffer{}
	return &cmdEnv{
		Stdin: strings.NewReader(""), Stdout: out, Stderr: errb,
		Getenv: func(k string) string { return vars[k] },
	}, out, errb
}

func TestServeHelpListsEveryOption(t *testing.T) {
	env, out, _ := testEnv(nil)
	if code := run(env, []string{"serve", "--help"}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	help := out.String()
	for _, o := range serveOptions() {
		if !strings.Contains(help, "--"+o.name) || !strings.Contains(help, o.env) {
			t.Errorf("--help lacks --%s or %s", o.name, o.env)
		}
		if o.def != "" && !strings.Contains(help, o.def) {
			t.Errorf("--help lacks the default of --%s (%s)", o.name, o.def)
		}
	}
}

func TestServeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--lock-wait", "soon"},
		{"--socket-mode", "999"},
		{"--mode-rule", "POST /x sideways"},
		{"--key-rule", "cart maybe"},
		{"--max-frame", "-1"},
		{"--log-format", "xml"},
		{"stray-argument"},
		{"--token", "a", "--token-file", "/nonexistent"},
		{"--event-loops", "-1"},
		{"--event-loops", "many"},
	} {
		env, _, errb := testEnv(nil)
		if code := run(env, append([]string{"serve"}, args...)); code != exitUsage {
			t.Errorf("serve %v: exit %d, want %d (stderr %q)", args, code, exitUsage, errb.String())
		}
	}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	conf := writeFile(t, filepath.Join(dir, "phpsessd.conf"), `
# comment
lock-wait = 1s
listen = unix:///file/a.sock
listen = unix:///file/b.sock
mode-rule = "POST /checkout/* locked"
mode-rule = GET /api/* readonly
key-rule = cart fail
counter = hits
strict = false
max-frame = 1MiB
socket-mode = 0600
`)
	load := func(vars map[string]string, args ...string) serveConfig {
		t.Helper()
		opts := serveOptions()
		env, _, _ := testEnv(vars)
		fs := newFlagSet(env, "serve", "")
		flags := registerFlags(fs, opts)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadServeConfig(opts, flags, env.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	if c := load(nil); c.LockWait != engine.DefaultLockWait || !c.Strict || c.Listen != nil || c.MaxFrame != 16<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	c := load(nil, "--config", conf)
	if c.LockWait != time.Second || c.Strict || c.MaxFrame != 1<<20 || c.SocketMode != 0o600 ||
		strings.Join(c.Listen, " ") != "unix:///file/a.sock unix:///file/b.sock" ||
		len(c.ModeRules) != 2 || c.ModeRules[0] != (engine.ModeRule{Method: "POST", Path: "/checkout/*", Mode: engine.ModeLocked}) ||
		len(c.KeyRules) != 1 || c.KeyRules[0].Rule != engine.RuleFail || strings.Join(c.Counters, ",") != "hits" {
		t.Fatalf("file: %+v", c)
	}
	vars := map[string]string{
		"PHPSESSD_CONFIG":     conf,
		"PHPSESSD_LOCK_WAIT":  "2s",
		"PHPSESSD_LISTEN":     "unix:///env/a.sock,tcp://127.0.0.1:7000",
		"PHPSESSD_MODE_RULES": "* locked;GET /x readonly",
		"PHPSESSD_STRICT":     "true",
	}
	c = load(vars)
	if c.LockWait != 2*time.Second || !c.Strict || strings.Join(c.Listen, " ") != "unix:///env/a.sock tcp://127.0.0.1:7000" ||
		len(c.ModeRules) != 2 || c.ModeRules[0].Mode != engine.ModeLocked || c.MaxFrame != 1<<20 {
		t.Fatalf("env over file: %+v", c)
	}
	c = load(vars, "--lock-wait", "3s", "--listen", "unix:///flag/x.sock", "--listen", "unix:///flag/y.sock", "--strict=false")
	if c.LockWait != 3*time.Second || c.Strict || strings.Join(c.Listen, " ") != "unix:///flag/x.sock unix:///flag/y.sock" {
		t.Fatalf("flags over env: %+v", c)
	}

	tokFile := writeFile(t, filepath.Join(dir, "token"), "  t0ken\n")
	if c := load(map[string]string{"PHPSESSD_TOKEN_FILE": tokFile}); c.Token != "t0ken" {
		t.Fatalf("token file: %q", c.Token)
	}

	for _, bad := range []string{"nonsense line", "colour = red", "lock-wait = 1s\nlock-wait = 2s", "lock-wait = never"} {
		p := writeFile(t, filepath.Join(dir, "bad.conf"), bad)
		env, _, _ := testEnv(nil)
		if code := run(env, []string{"serve", "--config", p}); code != exitUsage {
			t.Errorf("config %q: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

func TestDefaultDirs(t *testing.T) {
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if d := defaultDataDir(get(nil), 0); d != "/var/lib/phpsessd" {
		t.Errorf("root data dir %s", d)
	}
	if d := defaultDataDir(get(map[string]string{"XDG_STATE_HOME": "/x/state", "HOME": "/h"}), 1000); d != "/x/state/phpsessd" {
		t.Errorf("xdg data dir %s", d)
	}
	if d := defaultDataDir(get(map[string]string{"HOME": "/h"}), 1000); d != "/h/.local/state/phpsessd" {
		t.Errorf("home data dir %s", d)
	}
	if d := defaultRuntimeDir(get(nil), 0, "/data"); d != "/run/phpsessd" {
		t.Errorf("root runtime dir %s", d)
	}
	if d := defaultRuntimeDir(get(map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}), 1000, "/data"); d != "/run/user/1000/phpsessd" {
		t.Errorf("xdg runtime dir %s", d)
	}
	if d := defaultRuntimeDir(get(nil), 1000, "/data"); d != "/data" {
		t.Errorf("fallback runtime dir %s", d)
	}
}

// startServe runs `phpsessd serve args…` in-process and returns its
// addresses, a stop function (the SIGTERM path) and its log.
func startServe(t *testing.T, vars map[string]string, args ...string) ([]string, func() int, *syncBuffer) {
	t.Helper()
	env, _, errb := testEnv(vars)
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan []string, 1)
	code := make(chan int, 1)
	go func() { code <- serveMain(ctx, env, args, func(a []string) { addrs <- a }) }()
	select {
	case a := <-addrs:
		var once sync.Once
		var c int
		stop := func() int {
			once.Do(func() { cancel(); c = <-code })
			return c
		}
		t.Cleanup(func() { stop() })
		return a, stop, errb
	case c := <-code:
		cancel()
		t.Fatalf("serve exited with %d before serving:\n%s", c, errb.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("serve did not start:\n%s", errb.String())
	}
	return nil, nil, nil
}

func TestServeEndToEnd(t *testing.T) {
	dir, err := os.MkdirTemp("", "psd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "run", "p.sock")
	data := filepath.Join(dir, "data")
	vars := map[string]string{"PHPSESSD_DATA_DIR": data, "PHPSESSD_LOG_FORMAT": "json"}
	addrs, stop, logs := startServe(t, vars, "--listen", "unix://"+sock, "--listen", "tcp://127.0.0.1:0", "--token", "tok")
	if len(addrs) != 2 || addrs[0] != "unix://"+sock || !strings.HasPrefix(addrs[1], "tcp://127.0.0.1:") {
		t.Fatalf("addrs %v", addrs)
	}
	line := logs.String()
	if !strings.Contains(line, `"msg":"phpsessd serving"`) || !strings.Contains(line, sock) ||
		!strings.Contains(line, "files://"+filepath.ToSlash(filepath.Join(data, "sessions"))) {
		t.Fatalf("startup log lacks addresses or store:\n%s", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	c, err := protocol.Dial(ctx, addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	idRep, err := c.Do(ctx, "CREATEID")
	if err != nil {
		t.Fatal(err)
	}
	id := idRep.Text()
	if rep, err := c.Do(ctx, "WRITE", id, "n|i:42;", "FORMAT", "php"); err != nil || rep.Array[0].Text() != "written" {
		t.Fatalf("WRITE: %v %s", err, rep)
	}
	tc, err := protocol.Dial(ctx, addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if _, err := tc.Do(ctx, "READ", id); !protocol.IsCode(err, "NOAUTH") {
		t.Fatalf("TCP without auth: %v", err)
	}
	if _, err := tc.Hello(ctx, "tok", ""); err != nil {
		t.Fatal(err)
	}
	if rep, err := tc.Do(ctx, "READ", id, "FORMAT", "php"); err != nil || rep.Array[0].Text() != "n|i:42;" {
		t.Fatalf("READ over TCP: %v %s", err, rep)
	}
	// A connection that read a session may still write it, so shutdown
	// waits for it: end both as PHP does at the end of a request.
	c.Close()
	tc.Close()

	if code := stop(); code != exitOK {
		t.Fatalf("serve exit %d:\n%s", code, logs.String())
	}
	if !strings.Contains(logs.String(), "phpsessd stopped") {
		t.Fatalf("no clean stop in log:\n%s", logs.String())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}

	// The default store persists across restarts.
	addrs, stop, _ = startServe(t, vars, "--listen", "unix://"+sock)
	c2, err := protocol.Dial(ctx, addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if rep, err := c2.Do(ctx, "READ", id, "FORMAT", "php"); err != nil || rep.Array[0].Text() != "n|i:42;" {
		t.Fatalf("READ after restart: %v %s", err, rep)
	}
	c2.Close()
	if code := stop(); code != exitOK {
		t.Fatalf("second serve exit %d", code)
	}
}

func TestServeRefusesTCPWithoutToken(t *testing.T) {
	dir := t.TempDir()
	env, _, errb := testEnv(map[string]string{"PHPSESSD_DATA_DIR": dir})
	code := serveMain(context.Background(), env, []string{"--listen", "tcp://127.0.0.1:0", "--store", "memory://"}, nil)
	if code != exitFail || !strings.Contains(errb.String(), "token") {
		t.Fatalf("exit %d, log %s", code, errb.String())
	}
}

// The real signal path: `phpsessd serve` as registered, stopped by SIGTERM.
func TestServeSIGTERM(t *testing.T) {
	dir, err := os.MkdirTemp("", "psd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "t.sock")
	env, _, logs := testEnv(map[string]string{"PHPSESSD_DATA_DIR": dir})
	code := make(chan int, 1)
	go func() { code <- run(env, []string{"serve", "--listen", "unix://" + sock, "--store", "memory://"}) }()
	// Serving implies the signal handler is installed: it is set up before
	// the listeners are bound.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := protocol.Dial(ctx, "unix://"+sock)
		cancel()
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != exitOK || !strings.Contains(logs.String(), "phpsessd stopped") {
			t.Fatalf("exit %d:\n%s", c, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("serve ignored SIGTERM:\n%s", logs.String())
	}
}
