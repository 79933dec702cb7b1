//go:build !js && !wasip1

package protocol

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// echoServer answers PING with PONG, ECHO with the argument, FAIL with an
// error reply and SLOW by never answering: just enough protocol to test the
// client over real sockets.
func echoServer(t *testing.T, network, addr string) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r, w := NewReader(c, Limits{}), NewWriter(c)
				for {
					args, err := r.ReadRequest()
					if err != nil {
						return
					}
					switch string(args[0]) {
					case "PING":
						w.WriteSimple("PONG")
					case "ECHO":
						w.WriteArray(2)
						w.WriteBulk(args[1])
						w.WriteInt(int64(len(args[1])))
					case "FAIL":
						w.WriteError("LOCKTIMEOUT", "waited too long")
					case "SLOW":
						continue
					}
					w.Flush()
				}
			}(c)
		}
	}()
	if network == "unix" {
		return "unix://" + addr
	}
	return "tcp://" + ln.Addr().String()
}

func TestClientOverSockets(t *testing.T) {
	addrs := map[string]string{
		"unix": echoServer(t, "unix", filepath.Join(t.TempDir(), "e.sock")),
		"tcp":  echoServer(t, "tcp", "127.0.0.1:0"),
	}
	for name, addr := range addrs {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := Dial(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rep, err := c.Do(ctx, "PING")
			if err != nil || rep.Kind != KindSimple || rep.Text() != "PONG" {
				t.Fatalf("PING: %v %s", err, rep)
			}
			payload := []byte("bin\r\n\x00ary")
			rep, err = c.Do(ctx, "ECHO", payload)
			if err != nil || len(rep.Array) != 2 || rep.Array[0].Text() != string(payload) || rep.Array[1].Int != int64(len(payload)) {
				t.Fatalf("ECHO: %v %s", err, rep)
			}
			_, err = c.Do(ctx, "FAIL")
			var se *ServerError
			if !errors.As(err, &se) || se.Code != "LOCKTIMEOUT" || se.Message != "waited too long" {
				t.Fatalf("FAIL: %v", err)
			}
			// An error reply leaves the client usable.
			if _, err := c.Do(ctx, "PING"); err != nil {
				t.Fatalf("PING after error reply: %v", err)
			}
			short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancelShort()
			if _, err := c.Do(short, "SLOW"); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("SLOW: %v, want deadline exceeded", err)
			}
			if _, err := c.Do(ctx, "PING"); err == nil {
				t.Fatal("client reused after a cut round trip")
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Dial(ctx, "unix://"+filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Fatal("dial of a missing socket succeeded")
	}
	if _, err := Dial(ctx, "gopher://x"); err == nil {
		t.Fatal("dial of a bad scheme succeeded")
	}
}
