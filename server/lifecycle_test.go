package server

import (
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
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

// Shutdown closes idle connections and lets requests under way finish: a
// locked READ waiting in flight is granted once the holder WRITEs during the
// shutdown, and then writes too; nothing is left behind.
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
	_, v := session(t, do(t, holder, "READ", id, "MODE", "locked", "FORMAT", "php"), "locked")
	got := make(chan error, 1)
	go func() {
		rep, err := waiter.Do(ctx, "READ", id, "MODE", "locked", "FORMAT", "php", "WAIT", 10000)
		if err == nil && (len(rep.Array) != 3 || rep.Array[2].Text() != "locked" || rep.Array[0].Text() != "a|i:1;") {
			err = errors.New("bad reply " + rep.String())
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the waiter queue

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }()
	waitClosed(t, idle)
	writeReply(t, do(t, holder, "WRITE", id, "a|i:1;", "BASE", v), "written")
	if err := <-got; err != nil {
		t.Fatalf("in-flight locked READ: %v", err)
	}
	writeReply(t, do(t, waiter, "WRITE", id, "a|i:2;"), "written")
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
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

// waitClosed waits until the server has closed c: a read sees EOF.
func waitClosed(t *testing.T, c *protocol.Client) {
	t.Helper()
	nc := c.Conn()
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	if _, err := nc.Read(b[:]); !errors.Is(err, io.EOF) {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	nc.SetReadDeadline(time.Time{})
}

// A request that READ before the shutdown may still WRITE (and it is
// stored), while new READs get -SHUTDOWN, idle connections close at once,
// and Shutdown returns as soon as the last request wrote, long before its
// timeout.
func TestShutdownWaitsForPendingWrite(t *testing.T) {
	base := runtime.NumGoroutine()
	st, err := handlers.Open(context.Background(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	ecfg := engine.NewConfig(st)
	ecfg.Logger = testLogger(t)
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	sock := shortTempDir(t) + "/w.sock"
	srv, err := New(Config{Engine: eng, Listen: []string{"unix://" + sock}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	ctx := context.Background()
	var a, b, c *protocol.Client
	for _, p := range []**protocol.Client{&a, &b, &c} {
		if *p, err = protocol.Dial(ctx, "unix://"+sock); err != nil {
			t.Fatal(err)
		}
		defer (*p).Close()
	}
	idA := do(t, a, "CREATEID").Text()
	idB := do(t, b, "CREATEID").Text()
	_, va := session(t, do(t, a, "READ", idA, "FORMAT", "php"), "optimistic")
	session(t, do(t, b, "READ", idB, "FORMAT", "php"), "optimistic")
	wantSimple(t, do(t, c, "PING"), "PONG")

	const timeout = 10 * time.Second
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }()

	waitClosed(t, c)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
	// B's request is still open, but it cannot start another one.
	doErr(t, b, "SHUTDOWN", "READ", "x"+idB, "FORMAT", "php")
	doErr(t, b, "SHUTDOWN", "LOCK", "x"+idB)
	// Upgrading the request's own session is part of finishing it.
	session(t, do(t, b, "LOCK", idB, "FORMAT", "php"), "locked")
	wantSimple(t, do(t, b, "CLOSE", idB), "OK")
	waitClosed(t, b)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while A still owed its WRITE", err)
	case <-time.After(100 * time.Millisecond):
	}
	writeReply(t, do(t, a, "WRITE", idA, "k|s:4:\"late\";", "BASE", va, "FORMAT", "php"), "written")
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(timeout / 2):
		t.Fatal("Shutdown still waiting after the last WRITE")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v, timeout %v", d, timeout)
	}
	waitClosed(t, a)
	rec, err := st.Load(ctx, idA)
	if err != nil || string(rec.Data) != `k|s:4:"late";` {
		t.Fatalf("stored %q, %v; want the WRITE made during shutdown", rec.Data, err)
	}
	if err := eng.Close(); err != nil {
		t.Fatalf("engine close: %v", err)
	}
	for _, p := range []*protocol.Client{a, b, c} {
		p.Close()
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

// A connection that keeps sending requests the server turns away (here an
// unknown command) is active, not idle: the idle deadline must move with
// them, not with the last command that ran.
func TestRejectedRequestsKeepConnectionOpen(t *testing.T) {
	env := startServer(t, func(c *Config, _ *engine.Config) { c.IdleTimeout = 300 * time.Millisecond })
	c := dial(t, env.unix)
	wantSimple(t, do(t, c, "PING"), "PONG")
	deadline := time.Now().Add(900 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		_, err := c.Do(ctx5(t), "NOSUCHCOMMAND")
		var se *protocol.ServerError
		if !errors.As(err, &se) {
			t.Fatalf("unknown command on an active connection: %v, want an error reply", err)
		}
	}
	wantSimple(t, do(t, c, "PING"), "PONG")
}

// session_regenerate_id during the shutdown: the request goes on under the
// new id, and its WRITE there ends it.
func TestShutdownFollowsRegenerate(t *testing.T) {
	eng := newEngine(t)
	sock := shortTempDir(t) + "/r.sock"
	srv, err := New(Config{Engine: eng, Listen: []string{"unix://" + sock}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	ctx := context.Background()
	a, err := protocol.Dial(ctx, "unix://"+sock)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	id := do(t, a, "CREATEID").Text()
	session(t, do(t, a, "READ", id, "FORMAT", "php"), "optimistic")
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }()
	for !srv.ShuttingDown() {
		time.Sleep(time.Millisecond)
	}
	newID := do(t, a, "REGENERATE", id).Text()
	// The old id is no longer what keeps the connection open.
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) before the regenerated session was written", err)
	case <-time.After(100 * time.Millisecond):
	}
	writeReply(t, do(t, a, "WRITE", newID, "r|i:1;", "FORMAT", "php"), "written")
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown still waiting after the WRITE under the new id")
	}
	waitClosed(t, a)
}
