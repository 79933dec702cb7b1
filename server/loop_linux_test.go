//go:build linux

package server

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/protocol"
)

// startLoopServer runs the test server on event loops whatever
// PHPSESSD_TEST_LOOPS says.
func startLoopServer(t *testing.T, loops int, mod func(*Config, *engine.Config)) *testEnv {
	t.Helper()
	env := startServer(t, func(c *Config, e *engine.Config) {
		if mod != nil {
			mod(c, e)
		}
		c.Loops = loops
	})
	if len(env.srv.loops) != loops {
		t.Fatalf("server runs %d loops, want %d", len(env.srv.loops), loops)
	}
	return env
}

// waitQueued returns once the engine counts a lock wait: the waiter is
// queued behind the holder.
func waitQueued(t *testing.T, env *testEnv) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for env.eng.Stats().LockWaits == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never queued for the lock")
		}
		time.Sleep(time.Millisecond)
	}
}

func detaches(env *testEnv) uint64 {
	var n uint64
	for _, l := range env.srv.loops {
		n += l.detaches.Load()
	}
	return n
}

// A request that waits for a lock leaves the loop: every other connection
// of that one loop is still answered, and the waiter gets the lock the
// moment it is released.
func TestLoopLockWaitDoesNotStallTheLoop(t *testing.T) {
	env := startLoopServer(t, 1, nil)
	holder, waiter, other := dial(t, env.unix), dial(t, env.unix), dial(t, env.unix)
	id := strings.Repeat("l", 32)
	session(t, do(t, holder, "READ", id, "MODE", "locked", "FORMAT", "php"), "locked")

	got := make(chan protocol.Reply, 1)
	errc := make(chan error, 1)
	go func() {
		rep, err := waiter.Do(context.Background(), "READ", id, "MODE", "locked", "FORMAT", "php", "WAIT", 5000)
		if err != nil {
			errc <- err
			return
		}
		got <- rep
	}()
	waitQueued(t, env)
	for i := 0; i < 20; i++ {
		wantSimple(t, do(t, other, "PING"), "PONG")
		do(t, other, "READ", fmt.Sprintf("%032d", i), "FORMAT", "php")
	}
	select {
	case rep := <-got:
		t.Fatalf("the waiter got %s while the lock was held", rep)
	case err := <-errc:
		t.Fatalf("waiter: %v", err)
	default:
	}
	do(t, holder, "WRITE", id, "a|i:1;", "FORMAT", "php")
	select {
	case rep := <-got:
		if data, _ := session(t, rep, "locked"); data != "a|i:1;" {
			t.Fatalf("waiter read %q after the hand-off", data)
		}
	case err := <-errc:
		t.Fatalf("waiter: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never got the released lock")
	}
	if detaches(env) == 0 {
		t.Fatal("the lock wait ran on the loop")
	}
	// Back on the loop, the waiter's connection goes on as before.
	do(t, waiter, "WRITE", id, "a|i:2;", "FORMAT", "php")
	data, _ := session(t, do(t, other, "READ", id, "FORMAT", "php"), "optimistic")
	if data != "a|i:2;" {
		t.Fatalf("read %q after the waiter's write", data)
	}
}

// A batch of requests sent in one write, cut at random places, is answered
// in order, and a request larger than a read is put together from many.
func TestLoopPipelinedAndSplitFrames(t *testing.T) {
	env := startLoopServer(t, 1, nil)
	nc := dialRaw(t, env.unix)
	big := strings.Repeat("x", 3*loopReadSize+17)
	id := strings.Repeat("p", 32)
	var req bytes.Buffer
	const n = 300
	for i := 0; i < n; i++ {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&req, "*2\r\n$4\r\nPING\r\n$%d\r\n%d\r\n", len(fmt.Sprint(i)), i)
		case 1:
			data := fmt.Sprintf("s|s:%d:\"%s\";", len(big), big)
			fmt.Fprintf(&req, "*5\r\n$5\r\nWRITE\r\n$32\r\n%s\r\n$%d\r\n%s\r\n$6\r\nFORMAT\r\n$3\r\nphp\r\n", id, len(data), data)
		case 2:
			fmt.Fprintf(&req, "*4\r\n$4\r\nREAD\r\n$32\r\n%s\r\n$6\r\nFORMAT\r\n$3\r\nphp\r\n", id)
		}
	}
	rng := rand.New(rand.NewSource(1))
	done := make(chan error, 1)
	go func() {
		b := req.Bytes()
		for len(b) > 0 {
			k := min(len(b), 1+rng.Intn(9000))
			if _, err := nc.Write(b[:k]); err != nil {
				done <- err
				return
			}
			b = b[k:]
		}
		done <- nil
	}()
	r := replyReader(nc, 20*time.Second)
	for i := 0; i < n; i++ {
		rep, err := r.ReadReply()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		switch i % 3 {
		case 0:
			if rep.Text() != fmt.Sprint(i) {
				t.Fatalf("reply %d: %s, want the echo of %d", i, rep, i)
			}
		case 1:
			if rep.Kind != protocol.KindArray || rep.Array[0].Text() != "written" && rep.Array[0].Text() != "unchanged" && rep.Array[0].Text() != "merged" {
				t.Fatalf("reply %d: %s, want a WRITE result", i, rep)
			}
		case 2:
			data, _ := session(t, rep, "optimistic")
			if !strings.Contains(data, big) {
				t.Fatalf("reply %d: READ returned %d bytes, not the written session", i, len(data))
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A client that sends requests without reading the replies fills the
// socket; the loop keeps what the socket does not take, reads nothing more
// from that client meanwhile, and every reply arrives once it reads.
func TestLoopSlowReaderGetsEveryReply(t *testing.T) {
	env := startLoopServer(t, 1, nil)
	nc := dialRaw(t, env.unix)
	id := strings.Repeat("s", 32)
	data := "s|s:200000:\"" + strings.Repeat("y", 200000) + "\";"
	c := dial(t, env.unix)
	do(t, c, "WRITE", id, data, "FORMAT", "php")

	const n = 40 // 8 MB of replies, far more than a socket buffers
	req := fmt.Sprintf("*4\r\n$4\r\nREAD\r\n$32\r\n%s\r\n$6\r\nFORMAT\r\n$3\r\nphp\r\n", id)
	go func() {
		for i := 0; i < n; i++ {
			if _, err := nc.Write([]byte(req)); err != nil {
				return
			}
		}
	}()
	// While the reader is stalled the loop still serves everyone else.
	time.Sleep(100 * time.Millisecond)
	wantSimple(t, do(t, c, "PING"), "PONG")

	r := replyReader(nc, 20*time.Second)
	for i := 0; i < n; i++ {
		rep, err := r.ReadReply()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if got, _ := session(t, rep, "optimistic"); got != data {
			t.Fatalf("reply %d: %d bytes, want %d", i, len(got), len(data))
		}
	}
}

// Commands that walk every session run off the loop and the connection
// comes back to it afterwards.
func TestLoopOffLoopCommands(t *testing.T) {
	env := startLoopServer(t, 1, nil)
	c := dial(t, env.unix)
	for i := 0; i < 5; i++ {
		do(t, c, "WRITE", fmt.Sprintf("%032d", i), "a|i:1;", "FORMAT", "php")
	}
	for i := 0; i < 3; i++ {
		rep := do(t, c, "LIST", "LIMIT", 10)
		if rep.Kind != protocol.KindArray {
			t.Fatalf("LIST: %s", rep)
		}
		wantInt(t, do(t, c, "GC", 1440), 0)
		wantSimple(t, do(t, c, "PING"), "PONG")
	}
	if got := detaches(env); got != 6 {
		t.Fatalf("%d commands went off the loop, want the 6 LIST and GC", got)
	}
}

// The loop goroutines end with Shutdown, and a connection that was closed
// while a command of it ran off the loop is closed all the same.
func TestLoopShutdownEndsLoops(t *testing.T) {
	env := startLoopServer(t, 2, func(c *Config, _ *engine.Config) {})
	holder, waiter := dial(t, env.unix), dial(t, env.unix)
	id := strings.Repeat("w", 32)
	session(t, do(t, holder, "LOCK", id, "FORMAT", "php"), "locked")
	errc := make(chan error, 1)
	go func() {
		_, err := waiter.Do(context.Background(), "LOCK", id, "FORMAT", "php", "WAIT", 10000)
		errc <- err
	}()
	waitQueued(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := env.srv.Shutdown(ctx); err == nil {
		t.Fatal("shutdown with a request still holding a lock returned no error at its deadline")
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("the lock waiter got the lock during a forced shutdown")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the lock waiter was never answered or disconnected")
	}
	done := make(chan struct{})
	go func() { env.srv.loopWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop goroutines still running after Shutdown")
	}
}

// nextFrame parses a request again from its start when it arrives in
// pieces, and hands out exactly the requests a whole stream holds.
func TestLoopFramesFromPieces(t *testing.T) {
	var stream bytes.Buffer
	var want []string
	for i := 0; i < 50; i++ {
		arg := strings.Repeat(string(rune('a'+i%26)), i*i*7)
		fmt.Fprintf(&stream, "*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", len(arg), arg)
		want = append(want, arg)
	}
	for seed := int64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		st := &loopState{}
		c := &conn{ev: st, s: &Server{cfg: Config{MaxFrame: protocol.DefaultMaxFrame}}}
		c.r = protocol.NewReader(&st.in, protocol.Limits{})
		l := &loop{}
		b := stream.Bytes()
		var got []string
		for len(b) > 0 {
			k := min(len(b), 1+rng.Intn(700))
			st.in.buf = append(st.in.buf, b[:k]...)
			b = b[k:]
			for {
				args, err := l.nextFrame(c)
				if err == errNeedMore {
					break
				}
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				got = append(got, string(args[1]))
			}
		}
		if len(got) != len(want) {
			t.Fatalf("seed %d: %d requests, want %d", seed, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("seed %d: request %d has %d bytes, want %d", seed, i, len(got[i]), len(want[i]))
			}
		}
	}
}
