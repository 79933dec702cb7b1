package metrics

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/memory"
	"github.com/phpsessd/phpsessd/security"
	"github.com/phpsessd/phpsessd/server"
)

func newEngine(t *testing.T) *engine.Engine {
	t.Helper()
	st, err := memory.New(memory.Options{MaxEntries: 1000, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.NewConfig(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func scrape(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// value finds a sample line "name{labels} v" (labels in exposition order).
func value(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(l[len(series):]), 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return v
		}
	}
	t.Fatalf("series %s not in scrape:\n%s", series, body)
	return 0
}

func TestScrapeAfterTraffic(t *testing.T) {
	eng := newEngine(t)
	srv, err := server.New(server.Config{Engine: eng, Listen: []string{"tcp://127.0.0.1:0"}, InsecureNoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	st, err := memory.New(memory.Options{MaxEntries: 100, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := security.New(security.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sig.Report(security.KindAuthFailure, "tcp:127.0.0.1", "", "test")
	m, err := New(Options{Server: srv.Stats, Store: st, Signals: sig, ScanEvery: time.Millisecond, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var down atomic.Bool
	m.SetHealthCheck(func() error {
		if down.Load() {
			return io.ErrClosedPipe
		}
		return nil
	})
	hs, err := m.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := eng.CreateID(ctx, engine.IDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Two optimistic requests change different keys: the second merges.
	a, b := eng.NewClient("a"), eng.NewClient("b")
	defer a.Close()
	defer b.Close()
	ra, err := a.Read(ctx, engine.ReadRequest{ID: id, Format: "php"})
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := b.Read(ctx, engine.ReadRequest{ID: id, Format: "php"})
	if _, err := a.Write(ctx, engine.WriteRequest{ID: id, Data: []byte("x|i:1;"), BaseVersion: ra.Version, Format: "php"}); err != nil {
		t.Fatal(err)
	}
	if res, err := b.Write(ctx, engine.WriteRequest{ID: id, Data: []byte("y|i:2;"), BaseVersion: rb.Version, Format: "php"}); err != nil || res.Status != engine.StatusMerged {
		t.Fatalf("second write: %+v, %v", res, err)
	}
	// A locked request makes another wait, then hands the lock over.
	if _, err := a.Read(ctx, engine.ReadRequest{ID: id, Mode: engine.ModeLocked}); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := b.Read(ctx, engine.ReadRequest{ID: id, Mode: engine.ModeLocked})
		got <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); eng.Stats().LockWaits == 0 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	if err := a.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if _, err := a.Read(ctx, engine.ReadRequest{ID: "../etc/passwd"}); err == nil {
		t.Fatal("invalid id accepted")
	}
	// One protocol command through the real server, and the hook.
	ping(t, srv.Addrs()[0])
	m.ObserveCommand("READ", "optimistic", 150*time.Microsecond, "")
	m.ObserveCommand("READ", "locked", 3*time.Millisecond, "")
	m.ObserveCommand("WRITE", "", 200*time.Microsecond, "BACKEND")
	if _, err := st.Save(ctx, "counted", recordFor("z|i:1;"), 0); err != nil {
		t.Fatal(err)
	}

	code, body := scrape(t, hs.Addr(), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for series, min := range map[string]float64{
		"phpsessd_reads_total":                                                 4,
		"phpsessd_writes_total":                                                2,
		"phpsessd_merges_total":                                                1,
		"phpsessd_lock_waits_total":                                            1,
		"phpsessd_lock_handoffs_total":                                         1,
		"phpsessd_invalid_ids_total":                                           1,
		`phpsessd_commands_total{command="PING"}`:                              1,
		`phpsessd_session_requests_total{command="READ",mode="locked"}`:        1,
		`phpsessd_command_duration_seconds_count{command="READ"}`:              2,
		`phpsessd_command_duration_seconds_bucket{command="READ",le="0.0002"}`: 1,
		`phpsessd_build_info{version="test"}`:                                  1,
		"phpsessd_connections_total":                                           1,
	} {
		if v := value(t, body, series); v < min {
			t.Errorf("%s = %v, want >= %v", series, v, min)
		}
	}
	for _, rule := range []string{"mine", "theirs", "fail"} {
		if v := value(t, body, `phpsessd_merge_conflicts_total{rule="`+rule+`"}`); v != 0 {
			t.Errorf("%s conflicts = %v, want 0", rule, v)
		}
	}
	// The session count arrives from the background scan on a later scrape.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body = scrape(t, hs.Addr(), "/metrics")
		if strings.Contains(body, "phpsessd_sessions 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("phpsessd_sessions never reached 1:\n%s", grep(body, "phpsessd_sessions"))
		}
		time.Sleep(5 * time.Millisecond)
	}

	if code, body := scrape(t, hs.Addr(), "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	down.Store(true)
	if code, _ := scrape(t, hs.Addr(), "/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz while down: %d", code)
	}
}

func TestEngineOnlySource(t *testing.T) {
	eng := newEngine(t)
	m, err := New(Options{Engine: eng.Stats, ScanEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	n, err := testutilCount(m)
	if err != nil || n == 0 {
		t.Fatalf("gather: %d families, %v", n, err)
	}
}

func testutilCount(m *Metrics) (int, error) {
	fams, err := m.Registry().Gather()
	return len(fams), err
}

func grep(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func ping(t *testing.T, addr string) {
	t.Helper()
	a := strings.TrimPrefix(addr, "tcp://")
	c, err := net.DialTimeout("tcp", a, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "*1\r\n$4\r\nPING\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q, %v", line, err)
	}
}

func recordFor(data string) handlers.Record {
	return handlers.Record{Data: []byte(data), Expires: time.Now().Add(time.Hour)}
}
