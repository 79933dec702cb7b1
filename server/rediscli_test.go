package server

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// redis-cli speaks the protocol unchanged, which is the debugging story
// PROTOCOL.md promises.
func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("PHPSESSD_REQUIRE_PHP") == "1" {
			t.Fatal("redis-cli not found and PHPSESSD_REQUIRE_PHP=1")
		}
		t.Skip("redis-cli not installed")
	}
	env := startServer(t, nil)
	c := dial(t, env.unix)
	id := do(t, c, "CREATEID").Text()
	writeReply(t, do(t, c, "WRITE", id, `user|s:5:"alice";`, "FORMAT", "php"), "written")

	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"-s", env.sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("PING"); strings.TrimSpace(out) != "PONG" {
		t.Fatalf("redis-cli PING = %q", out)
	}
	out := run("READ", id)
	for _, want := range []string{`user|s:5:"alice";`, "\n1\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("redis-cli READ output %q lacks %q", out, want)
		}
	}
	out = run("READ", id, "FORMAT", "php")
	if !strings.Contains(out, "optimistic") {
		t.Fatalf("redis-cli READ FORMAT php = %q", out)
	}
	if out := run("INFO", id); !strings.Contains(out, `"exists":true`) {
		t.Fatalf("redis-cli INFO = %q", out)
	}
}
