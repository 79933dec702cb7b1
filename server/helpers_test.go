package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	_ "github.com/phpsessd/phpsessd/handlers/memory"
	"github.com/phpsessd/phpsessd/protocol"
)

const testToken = "s3cret-token"

// flakyStore fails every call with ErrUnavailable while fail is set, to
// exercise -BACKEND.
type flakyStore struct {
	handlers.Store
	fail atomic.Bool
}

// ExactVersion passes the wrapped store's guarantee on, so the server
// tests run the write path the daemon runs on that store.
func (f *flakyStore) ExactVersion(v uint64) bool {
	ev, ok := f.Store.(handlers.ExactVersioner)
	return ok && ev.ExactVersion(v)
}

func (f *flakyStore) Load(ctx context.Context, id string) (handlers.Record, error) {
	if f.fail.Load() {
		return handlers.Record{}, errors.Join(handlers.ErrUnavailable, errors.New("disk on fire"))
	}
	return f.Store.Load(ctx, id)
}

func (f *flakyStore) Save(ctx context.Context, id string, rec handlers.Record, expect uint64) (uint64, error) {
	if f.fail.Load() {
		return 0, errors.Join(handlers.ErrUnavailable, errors.New("disk on fire"))
	}
	return f.Store.Save(ctx, id, rec, expect)
}

type testEnv struct {
	srv   *Server
	eng   *engine.Engine
	store *flakyStore
	unix  string
	tcp   string
	sock  string
}

// shortTempDir keeps socket paths under the 108-byte sun_path limit, which
// t.TempDir's long names can break.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "psd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer runs a server with an engine over a memory store on a unix
// socket and a token-protected loopback TCP port.
func startServer(t testing.TB, mod func(*Config, *engine.Config)) *testEnv {
	t.Helper()
	st, err := handlers.Open(context.Background(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{Store: st}
	ecfg := engine.NewConfig(fs)
	ecfg.Logger = testLogger(t)
	sock := filepath.Join(shortTempDir(t), "p.sock")
	cfg := Config{
		Listen:  []string{"unix://" + sock, "tcp://127.0.0.1:0"},
		Token:   testToken,
		Logger:  testLogger(t),
		Version: "1.2.3-test",
		Loops:   testLoops(t),
	}
	if mod != nil {
		mod(&cfg, &ecfg)
	}
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Engine = eng
	srv, err := New(cfg)
	if err != nil {
		eng.Close()
		t.Fatal(err)
	}
	srv.Start()
	env := &testEnv{srv: srv, eng: eng, store: fs, sock: sock}
	for _, a := range srv.Addrs() {
		if strings.HasPrefix(a, "unix://") {
			env.unix = a
		} else {
			env.tcp = a
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		eng.Close()
	})
	return env
}

func ctx5(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects and, for TCP, authenticates with HELLO.
func dial(t testing.TB, addr string) *protocol.Client {
	t.Helper()
	c, err := protocol.Dial(ctx5(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if strings.HasPrefix(addr, "tcp://") {
		if _, err := c.Hello(ctx5(t), testToken, "test"); err != nil {
			t.Fatalf("hello: %v", err)
		}
	}
	return c
}

func do(t testing.TB, c *protocol.Client, args ...any) protocol.Reply {
	t.Helper()
	rep, err := c.Do(ctx5(t), args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return rep
}

func doErr(t testing.TB, c *protocol.Client, code string, args ...any) *protocol.ServerError {
	t.Helper()
	_, err := c.Do(ctx5(t), args...)
	var se *protocol.ServerError
	if !errors.As(err, &se) || se.Code != code {
		t.Fatalf("%v: err = %v, want -%s", args, err, code)
	}
	return se
}

func wantInt(t testing.TB, rep protocol.Reply, n int64) {
	t.Helper()
	if rep.Kind != protocol.KindInt || rep.Int != n {
		t.Fatalf("reply %s, want integer %d", rep, n)
	}
}

func wantSimple(t testing.TB, rep protocol.Reply, s string) {
	t.Helper()
	if rep.Kind != protocol.KindSimple || rep.Text() != s {
		t.Fatalf("reply %s, want +%s", rep, s)
	}
}

// session checks a READ/LOCK reply and returns its data and version.
func session(t testing.TB, rep protocol.Reply, mode string) (string, uint64) {
	t.Helper()
	if rep.Kind != protocol.KindArray || len(rep.Array) != 3 ||
		rep.Array[0].Kind != protocol.KindBulk || rep.Array[1].Kind != protocol.KindInt ||
		rep.Array[2].Kind != protocol.KindSimple {
		t.Fatalf("session reply %s", rep)
	}
	if got := rep.Array[2].Text(); got != mode {
		t.Fatalf("granted mode %s, want %s (reply %s)", got, mode, rep)
	}
	return rep.Array[0].Text(), uint64(rep.Array[1].Int)
}

// writeReply checks a WRITE reply and returns its version.
func writeReply(t testing.TB, rep protocol.Reply, status string) uint64 {
	t.Helper()
	if rep.Kind != protocol.KindArray || len(rep.Array) != 2 || rep.Array[0].Text() != status || rep.Array[1].Kind != protocol.KindInt {
		t.Fatalf("write reply %s, want status %s", rep, status)
	}
	return uint64(rep.Array[1].Int)
}

// dialRaw opens a plain socket to addr, for tests that write and read
// frames themselves; it is closed when the test ends.
func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	a, err := protocol.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial(a.Network, a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// replyReader reads the server's replies on nc, which must all arrive
// within d.
func replyReader(nc net.Conn, d time.Duration) *protocol.Reader {
	nc.SetReadDeadline(time.Now().Add(d))
	return protocol.NewReader(bufio.NewReader(nc), protocol.Limits{})
}

// rawExchange sends raw bytes and returns the first reply line and whether
// the server closed the connection afterwards.
func rawExchange(t testing.TB, addr string, payload []byte) (line string, closed bool) {
	t.Helper()
	nc := dialRaw(t, addr)
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	go nc.Write(payload) // big payloads may block until the server drains
	br := bufio.NewReader(nc)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading reply to %q: %v", truncate(payload), err)
	}
	_, err = io.Copy(io.Discard, br)
	return strings.TrimRight(line, "\r\n"), err == nil || errors.Is(err, io.EOF) || isReset(err)
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

func truncate(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// testLoops is PHPSESSD_TEST_LOOPS: every server test then runs on that
// many event loops. scripts/test.sh runs this package once with a
// goroutine per connection and once on loops.
func testLoops(t testing.TB) int {
	v := os.Getenv("PHPSESSD_TEST_LOOPS")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("PHPSESSD_TEST_LOOPS=%q: want a count", v)
	}
	return n
}
