package testserver

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func roundTrip(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func TestRedisKillRestartKeepsAddressAndData(t *testing.T) {
	r := StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	addr := r.Addr
	if got := roundTrip(t, addr, "SET k v\r\n"); got != "+OK\r\n" {
		t.Fatalf("SET = %q", got)
	}
	r.Kill()
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("server still answering after Kill")
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if r.Addr != addr {
		t.Fatalf("restarted on %s, want %s", r.Addr, addr)
	}
	if got := roundTrip(t, addr, "GET k\r\n"); got != "$1\r\n" {
		t.Fatalf("GET after restart = %q, want the value from the append-only file", got)
	}
	if !strings.Contains(r.Logs(), "Ready to accept connections") {
		t.Errorf("logs lack the startup line:\n%s", r.Logs())
	}
	r.Stop()
	r.Stop()
}

func TestRedisStartFailureReportsLog(t *testing.T) {
	bin := Need(t, "redis-server")
	r := &Redis{Bin: bin, Dir: t.TempDir(), Args: []string{"--no-such-option", "1"}}
	err := r.Start()
	if err == nil {
		r.Stop()
		t.Fatal("started with an unknown option")
	}
	if !strings.Contains(err.Error(), "exited during start") || !strings.Contains(err.Error(), "no-such-option") {
		t.Fatalf("error lacks the cause: %v", err)
	}
}

func TestMemcached(t *testing.T) {
	m := StartMemcached(t)
	if got := roundTrip(t, m.Addr, "version\r\n"); !strings.HasPrefix(got, "VERSION ") {
		t.Fatalf("version = %q", got)
	}
}

func TestFreePortLeavesBusPortFree(t *testing.T) {
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if p < 20000 || p >= 45000 || !portFree(p+10000) {
		t.Fatalf("port %d outside the range or its bus port taken", p)
	}
}

func TestSyncBufferMax(t *testing.T) {
	b := &SyncBuffer{Max: 4}
	for _, s := range []string{"abc", "de", "fg"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "abcde" {
		t.Fatalf("kept %q, want the writes up to the cap", got)
	}
}
