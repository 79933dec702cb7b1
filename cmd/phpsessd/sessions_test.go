package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/protocol"
)

// sessionsDaemon starts a daemon on a unix socket and a token-protected TCP
// port, stores n sessions and tags the first two with user:1.
func sessionsDaemon(t *testing.T, n int) (unix, tcp string, ids []string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "psd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	vars := map[string]string{"PHPSESSD_DATA_DIR": filepath.Join(dir, "data")}
	addrs, _, _ := startServe(t, vars, "--listen", "unix://"+filepath.Join(dir, "p.sock"),
		"--listen", "tcp://127.0.0.1:0", "--token", "tok", "--store", "memory://")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := protocol.Dial(ctx, addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < n; i++ {
		id, err := c.Do(ctx, "CREATEID")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Do(ctx, "WRITE", id.Text(), `user|s:5:"alice";n|i:`+string(rune('0'+i))+";", "FORMAT", "php"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.Text())
	}
	for _, id := range ids[:2] {
		if _, err := c.Do(ctx, "REF", "ADD", id, "user:1"); err != nil {
			t.Fatal(err)
		}
	}
	return addrs[0], addrs[1], ids
}

func runSessions(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	env, out, errb := testEnv(vars)
	code := run(env, append([]string{"sessions"}, args...))
	return code, out.String(), errb.String()
}

func lines(s string) []string {
	return strings.Fields(s)
}

func TestSessionsLs(t *testing.T) {
	unix, tcp, ids := sessionsDaemon(t, 5)
	sorted := slices.Clone(ids)
	sort.Strings(sorted)

	code, out, errs := runSessions(t, nil, "--address", unix, "ls")
	if code != exitOK || !slices.Equal(lines(out), sorted) {
		t.Fatalf("ls: exit %d, out %q, err %q; want %v", code, out, errs, sorted)
	}
	// Flags after the subcommand, the limit, JSON.
	code, out, _ = runSessions(t, nil, "ls", "--address", unix, "--limit", "2", "--json")
	var got []string
	if code != exitOK || json.Unmarshal([]byte(out), &got) != nil || !slices.Equal(got, sorted[:2]) {
		t.Fatalf("ls --limit 2 --json: exit %d, %q", code, out)
	}
	tagged := slices.Clone(ids[:2])
	sort.Strings(tagged)
	code, out, _ = runSessions(t, map[string]string{"PHPSESSD_ADDRESS": unix}, "ls", "--ref", "user:1")
	if code != exitOK || !slices.Equal(lines(out), tagged) {
		t.Fatalf("ls --ref (address from env): exit %d, %q", code, out)
	}
	code, out, _ = runSessions(t, nil, "--address", unix, "ls", "--ref", "nobody", "--json")
	if code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Fatalf("ls of an unknown ref: exit %d, %q", code, out)
	}
	// TCP needs the token, from the flag or the environment.
	if code, _, errs := runSessions(t, nil, "--address", tcp, "ls"); code != exitFail || !strings.Contains(errs, "token") {
		t.Fatalf("ls over TCP without a token: exit %d, %q", code, errs)
	}
	code, out, _ = runSessions(t, map[string]string{"PHPSESSD_TOKEN": "tok"}, "--address", tcp, "ls", "--limit", "0")
	if code != exitOK || len(lines(out)) != 5 {
		t.Fatalf("ls over TCP with the token: exit %d, %q", code, out)
	}
	if code, _, errs := runSessions(t, nil, "--address", tcp, "--token", "wrong", "stats"); code != exitFail || !strings.Contains(errs, "WRONGPASS") {
		t.Fatalf("wrong token: exit %d, %q", code, errs)
	}
}

func TestSessionsShowRmStats(t *testing.T) {
	unix, _, ids := sessionsDaemon(t, 3)

	code, out, errs := runSessions(t, nil, "--address", unix, "show", ids[0])
	if code != exitOK {
		t.Fatalf("show: exit %d, %q", code, errs)
	}
	var info struct {
		ID      string         `json:"id"`
		Version json.Number    `json:"version"`
		Refs    []string       `json:"refs"`
		TTL     int64          `json:"ttl_seconds"`
		Data    map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("show output is not JSON: %v\n%s", err, out)
	}
	if info.ID != ids[0] || info.Version == "" || !slices.Equal(info.Refs, []string{"user:1"}) ||
		info.TTL < 1400 || info.TTL > 1440 || info.Data["user"] != "alice" {
		t.Fatalf("show: %+v\n%s", info, out)
	}
	if code, _, errs := runSessions(t, nil, "--address", unix, "show", strings.Repeat("a", 32)); code != exitFail || !strings.Contains(errs, "no session") {
		t.Fatalf("show of an unknown id: exit %d, %q", code, errs)
	}
	if code, _, errs := runSessions(t, nil, "--address", unix, "show", "../x"); code != exitFail || !strings.Contains(errs, "INVALIDID") {
		t.Fatalf("show of a malformed id: exit %d, %q", code, errs)
	}

	code, out, _ = runSessions(t, nil, "--address", unix, "rm", ids[2])
	if code != exitOK || !strings.Contains(out, "1 session destroyed") {
		t.Fatalf("rm: exit %d, %q", code, out)
	}
	if code, _, _ := runSessions(t, nil, "--address", unix, "rm", ids[2]); code != exitFail {
		t.Fatalf("rm of a gone session: exit %d", code)
	}
	code, out, _ = runSessions(t, nil, "--address", unix, "rm", "--ref", "user:1")
	if code != exitOK || !strings.Contains(out, "2 sessions destroyed") {
		t.Fatalf("rm --ref: exit %d, %q", code, out)
	}
	code, out, _ = runSessions(t, nil, "--address", unix, "ls")
	if code != exitOK || strings.TrimSpace(out) != "" {
		t.Fatalf("ls after rm: %q", out)
	}

	code, out, _ = runSessions(t, nil, "--address", unix, "stats")
	var stats struct {
		Engine map[string]any `json:"engine"`
		Server struct {
			Commands map[string]json.Number `json:"commands"`
		} `json:"server"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &stats) != nil || stats.Engine == nil || stats.Server.Commands["REF"] == "" {
		t.Fatalf("stats: exit %d, %q", code, out)
	}
	if !strings.Contains(out, "\n  ") {
		t.Fatalf("stats is not pretty-printed: %q", out)
	}
}

func TestSessionsUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frob"},
		{"ls", "extra"},
		{"ls", "--limit", "-1"},
		{"ls", "--nope"},
		{"show"},
		{"show", "a", "b"},
		{"rm"},
		{"rm", "id", "--ref", "user:1"},
		{"stats", "x"},
	} {
		code, out, errs := runSessions(t, nil, args...)
		if code != exitUsage || out != "" || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("sessions %v: exit %d, stdout %q, stderr %q; want exit 2 and one line", args, code, out, errs)
		}
	}
	for _, args := range [][]string{{"--help"}, {"ls", "--help"}, {"show", "--help"}, {"rm", "--help"}, {"stats", "--help"}} {
		code, out, _ := runSessions(t, nil, args...)
		if code != exitOK || !strings.Contains(out, "Usage: phpsessd sessions") {
			t.Errorf("sessions %v: exit %d, %q", args, code, out)
		}
	}
	// No daemon: a clear failure, not a usage error.
	code, _, errs := runSessions(t, nil, "--address", "unix:///nonexistent/p.sock", "stats")
	if code != exitFail || !strings.Contains(errs, "connect to unix:///nonexistent/p.sock") {
		t.Fatalf("no daemon: exit %d, %q", code, errs)
	}
}

func TestSessionsDefaultAddressIsServes(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"PHPSESSD_DATA_DIR": dir, "XDG_RUNTIME_DIR": filepath.Join(dir, "run"), "HOME": dir}
	if got := defaultSocketAddress(func(k string) string { return vars[k] }); os.Geteuid() != 0 && got != "unix://"+filepath.Join(dir, "run", "phpsessd", "phpsessd.sock") {
		t.Fatalf("default address %s", got)
	}
	if os.Geteuid() == 0 {
		if got := defaultSocketAddress(func(string) string { return "" }); got != "unix:///run/phpsessd/phpsessd.sock" {
			t.Fatalf("root default %s", got)
		}
	}
}
