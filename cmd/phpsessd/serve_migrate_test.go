package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/protocol"
)

// A daemon started with --migrate-from serves sessions that so far exist
// only in the old store (here a directory PHP's files handler wrote) and
// copies them into its own store on first read.
func TestServeMigrateFrom(t *testing.T) {
	dir, err := os.MkdirTemp("", "psdm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	oldDir := filepath.Join(dir, "php-sessions")
	newDir := filepath.Join(dir, "new")
	for _, d := range []string{oldDir, newDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	const id = "oldsession0123456789abcdef"
	writeFile(t, filepath.Join(oldDir, "sess_"+id), "user|s:5:\"alice\";")
	sock := filepath.Join(dir, "p.sock")
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	addrs, stop, logs := startServe(t, map[string]string{"PHPSESSD_DATA_DIR": dir},
		"--listen", "unix://"+sock, "--store", "files://"+newDir,
		"--migrate-from", "files://"+oldDir, "--migrate-until", until)
	if !strings.Contains(logs.String(), "falling back to files://"+oldDir) {
		t.Errorf("startup log does not name the fallback store:\n%s", logs.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := protocol.Dial(ctx, addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, err := c.Do(ctx, "READ", id, "FORMAT", "php")
	if err != nil || rep.Array[0].Text() != `user|s:5:"alice";` {
		t.Fatalf("READ through the fallback: %v %v", err, rep)
	}
	if b, err := os.ReadFile(filepath.Join(newDir, "sess_"+id)); err != nil || string(b) != `user|s:5:"alice";` {
		t.Fatalf("session not copied into the new store: %q %v", b, err)
	}
	c.Close()
	if code := stop(); code != exitOK {
		t.Fatalf("serve exit %d:\n%s", code, logs.String())
	}
}

func TestServeMigrateFlagsGoTogether(t *testing.T) {
	env, _, errb := testEnv(nil)
	if code := run(env, []string{"serve", "--migrate-from", "memory://"}); code != exitUsage {
		t.Fatalf("--migrate-from alone: exit %d, want %d (%s)", code, exitUsage, errb.String())
	}
	if code := run(env, []string{"serve", "--migrate-until", "tomorrow"}); code != exitUsage {
		t.Fatalf("bad --migrate-until: exit %d, want %d", code, exitUsage)
	}
}

// A read-only store (a memcached migration source) can't hold sessions:
// serve must refuse it at start rather than fail every write later.
func TestServeRefusesReadOnlyStore(t *testing.T) {
	dir := t.TempDir()
	env, _, errb := testEnv(map[string]string{"PHPSESSD_DATA_DIR": dir})
	code := serveMain(context.Background(), env, []string{"--listen", "unix://" + filepath.Join(dir, "s.sock"), "--store", "memcached://127.0.0.1:1"}, nil)
	if code != exitFail || !strings.Contains(errb.String(), "read-only") {
		t.Fatalf("exit %d, log %s", code, errb.String())
	}
}
