package server

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/protocol"
)

// waitGoroutines waits for the goroutine count to return to at most base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, baseline %d:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Shutdown closes idle connections, lets a command in flight finish (a
// lock wait that the shutdown itself unblocks by closing the holder) and
// leaves no goroutine behind.
func TestGracefulShutdown(t *testing.T) {
	base := runtime.NumGoroutine()
	eng := newEngine(t)
	sock := shortTempDir(t) + "/g.sock"
	srv, err := New(Config{Engine: eng, Listen: []string{"unix://" + sock, "tcp://127.0.0.1:0"}, Token: testToken, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	ctx := context.Background()
	holder, err := protocol.Dial(ctx, "unix://"+sock)
	if err != nil {
		t.Fatal(err)
	}
	waiter, err := protocol.Dial(ctx, "unix://"+sock)
	if err != nil {
		t.Fatal(err)
	}
	idle, err := protocol.Dial(ctx, srv.Addrs()[1])
	if err != nil {
		t.Fatal(err)
	}
	id := do(t, holder, "CREATEID").Text()
	session(t, do(t, holder, "READ", id, "MODE", "locked", "FORMAT", "php"), "locked")
	got := make(chan error, 1)
	go func() {
		rep, err := waiter.Do(ctx, "READ", id, "MODE", "locked", "FORMAT", "php", "WAIT", 10000)
		if err == nil && (len(rep.Array) != 3 || rep.Array[2].Text() != "locked") {
			err = errors.New("bad reply " + rep.String())
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the waiter queue

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	if err := <-got; err != nil {
		t.Fatalf("in-flight locked READ: %v", err)
	}
	for _, c := range []*protocol.Client{holder, waiter, idle} {
		if _, err := c.Do(ctx5(t), "PING"); err == nil {
			t.Fatal("connection still served after shutdown")
		}
		c.Close()
	}
	if _, err := protocol.Dial(ctx, "unix://"+sock); err == nil {
		t.Fatal("still accepting after shutdown")
	}
	if err := eng.Close(); err != nil {
		t.Fatalf("engine close: %v", err)
	}
	waitGoroutines(t, base)
}

// When the deadline passes, commands still running are cancelled and
// answered -SHUTDOWN (or cut), and Shutdown reports the deadline.
func TestShutdownDeadline(t *testing.T) {
	base := runtime.NumGoroutine()
	eng := newEngine(t)
	sock := shortTempDir(t) + "/d.sock"
	srv, err := New(Config{Engine: eng, Listen: []string{"unix://" + sock}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	ctx := context.Background()
	holder, _ := protocol.Dial(ctx, "unix://"+sock)
	waiter, _ := protocol.Dial(ctx, "unix://"+sock)
	defer holder.Close()
	defer waiter.Close()
	id := do(t, holder, "CREATEID").Text()
	// The holder is mid-command too: its own second locked READ on another
	// id waits behind the waiter's, so nothing frees the lock in time.
	session(t, do(t, holder, "READ", id, "MODE", "locked", "FORMAT", "php"), "locked")
	other := do(t, waiter, "CREATEID").Text()
	session(t, do(t, waiter, "READ", other, "MODE", "locked", "FORMAT", "php"), "locked")
	errs := make(chan error, 2)
	go func() {
		_, err := waiter.Do(ctx, "READ", id, "MODE", "locked", "FORMAT", "php", "WAIT", 20000)
		errs <- err
	}()
	go func() {
		_, err := holder.Do(ctx, "READ", other, "MODE", "locked", "FORMAT", "php", "WAIT", 20000)
		errs <- err
	}()
	time.Sleep(100 * time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("forced shutdown took %v", d)
	}
	for i := 0; i < 2; i++ {
		err := <-errs
		if err == nil {
			t.Fatal("deadlocked READ succeeded")
		}
		if se := (*protocol.ServerError)(nil); errors.As(err, &se) && se.Code != "SHUTDOWN" {
			t.Fatalf("cancelled READ: %v, want -SHUTDOWN or a closed connection", err)
		}
	}
	eng.Close()
	waitGoroutines(t, base)
}

func TestIdleTimeout(t *testing.T) {
	env := startServer(t, func(c *Config, _ *engine.Config) { c.IdleTimeout = 150 * time.Millisecond })
	c := dial(t, env.unix)
	wantSimple(t, do(t, c, "PING"), "PONG")
	time.Sleep(400 * time.Millisecond)
	if _, err := c.Do(ctx5(t), "PING"); err == nil {
		t.Fatal("idle connection not closed")
	}
}
