package server

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/protocol"
)

// Malformed frames get one error reply naming the problem, then the
// connection closes; other connections and stored sessions are untouched.
func TestMalformedFrames(t *testing.T) {
	env := startServer(t, func(c *Config, _ *engine.Config) { c.MaxFrame = 64 << 10 })
	bystander := dial(t, env.unix)
	id := do(t, bystander, "CREATEID").Text()
	writeReply(t, do(t, bystander, "WRITE", id, "a|i:1;", "FORMAT", "php"), "written")

	cases := []struct {
		name, payload, code, mention string
	}{
		{"bad type byte", "+PING\r\n", "PROTO", "expected '*'"},
		{"inline command", "PING\r\n", "PROTO", "inline"},
		{"negative bulk length", "*1\r\n$-4\r\n", "PROTO", "negative"},
		{"negative array length", "*-3\r\n", "PROTO", "array length"},
		{"huge bulk length", "*1\r\n$99999999999999\r\n", "TOOBIG", "frame too big"},
		{"overflowing length", "*1\r\n$999999999999999999999999\r\n", "PROTO", "overflow"},
		{"missing CRLF after bulk", "*1\r\n$4\r\nPINGPING\r\n", "PROTO", "CRLF"},
		{"LF without CR", "*1\n$4\nPING\n", "PROTO", "LF"},
		{"too many args", "*65\r\n", "PROTO", "too many arguments"},
		{"bulk expected", "*1\r\n:1\r\n", "PROTO", "expected '$'"},
		{"oversize frame", "*2\r\n$5\r\nWRITE\r\n$70000\r\n" + strings.Repeat("x", 70000) + "\r\n", "TOOBIG", "frame too big"},
	}
	for _, addr := range []string{env.unix, env.tcp} {
		for _, tc := range cases {
			t.Run(addr[:3]+"/"+tc.name, func(t *testing.T) {
				line, closed := rawExchange(t, addr, []byte(tc.payload))
				if !strings.HasPrefix(line, "-"+tc.code+" ") || !strings.Contains(line, tc.mention) {
					t.Fatalf("reply %q, want -%s mentioning %q", line, tc.code, tc.mention)
				}
				if !closed {
					t.Fatal("connection left open after a bad frame")
				}
			})
		}
	}
	// The bystander and its session survived all of it.
	wantSimple(t, do(t, bystander, "PING"), "PONG")
	data, _ := session(t, do(t, bystander, "READ", id, "FORMAT", "php"), "optimistic")
	if data != "a|i:1;" {
		t.Fatalf("session data %q after bad frames", data)
	}
	fresh := dial(t, env.unix)
	wantSimple(t, do(t, fresh, "PING"), "PONG")
}

// Connection buffers are reused by later connections: one that ends with
// requests unread and a request cut in half, or with a bad frame, must
// leave nothing behind for the connections after it.
func TestRecycledBuffersStartClean(t *testing.T) {
	env := startServer(t, nil)
	a, err := protocol.ParseAddress(env.unix)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		payload := "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nPING\r\n$4\r\nleft\r\n*2\r\n$4\r\nPING\r\n$9\r\nhalf"
		if i%2 == 1 {
			payload = "*1\r\n$4\r\nPING\r\n+BAD\r\n"
		}
		nc, err := net.Dial(a.Network, a.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write([]byte(payload)); err != nil {
			t.Fatal(err)
		}
		nc.Close()
		c := dial(t, env.unix)
		wantSimple(t, do(t, c, "PING"), "PONG")
		if got := do(t, c, "PING", "fresh").Text(); got != "fresh" {
			t.Fatalf("round %d: PING fresh answered %q", i, got)
		}
		c.Close()
	}
}

// A bad frame after a pause longer than the write timeout still gets its
// error reply: the write deadline must be armed from the time of the
// frame, not from the last command the connection ran.
func TestBadFrameAfterPauseIsAnswered(t *testing.T) {
	env := startServer(t, func(c *Config, _ *engine.Config) { c.WriteTimeout = 100 * time.Millisecond })
	nc := dialRaw(t, env.unix)
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	if _, err := nc.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q, %v", line, err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := nc.Write([]byte("+PING\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "-PROTO ") {
		t.Fatalf("bad frame after a pause: %q, %v; want a -PROTO reply", line, err)
	}
}
