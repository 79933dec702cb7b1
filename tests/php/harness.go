// Package phptest drives real php-fpm over FastCGI against phpsessd and
// against PHP's own files handler, so the claims phpsessd makes (parallel
// requests of one session neither wait nor lose writes; locks behave like
// the files handler's but are released when a worker dies; the shim
// honours every session_* function) are checked with the real session
// extension, not a model of it.
//
// The reusable machinery (php-fpm pool, FastCGI client, daemon and Redis
// subprocesses, test pages) lives in internal/fpmtest and is shared with
// `phpsessd bench`; this file adds the testing.T glue.
package phptest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/internal/fpmtest"
)

// requirePHP returns the php-fpm binary. Without one the test is skipped,
// unless PHPSESSD_REQUIRE_PHP=1 (CI sets it), where a missing PHP is a
// failure rather than a silent pass.
func requirePHP(t testing.TB) string {
	t.Helper()
	bin, err := fpmtest.FindFPM("")
	if err != nil {
		if os.Getenv("PHPSESSD_REQUIRE_PHP") == "1" {
			t.Fatalf("PHPSESSD_REQUIRE_PHP=1 but %v", err)
		}
		t.Skipf("skipping php-fpm integration test: %v", err)
	}
	return bin
}

// poolChildren is the size of every test pool: more than the largest batch
// of parallel requests, so none of them queues for a worker.
const poolChildren = 16

// newPool starts a private php-fpm pool that is stopped when the test
// ends, whatever its outcome; its logs are attached to a failed test.
func newPool(t testing.TB) *fpmtest.Pool {
	t.Helper()
	bin := requirePHP(t)
	dir := t.TempDir()
	p, err := fpmtest.StartPool(fpmtest.PoolConfig{Binary: bin, Dir: dir, Children: poolChildren})
	if err != nil {
		t.Fatalf("start php-fpm: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("php-fpm logs:\n%s", p.Logs())
		}
		if err := p.Stop(); err != nil {
			t.Errorf("stop php-fpm: %v", err)
		}
	})
	return p
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error

	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildDir  string
)

func moduleRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() { rootDir, rootErr = fpmtest.ModuleRoot() })
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return rootDir
}

// daemonBin builds ./cmd/phpsessd once per test binary, or takes
// $PHPSESSD_BIN.
func daemonBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("PHPSESSD_BIN"); bin != "" {
		return bin
	}
	root := moduleRoot(t)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "phpsessd-bin-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		buildBin, buildErr = fpmtest.BuildDaemon(ctx, root, buildDir)
	})
	if buildErr != nil {
		t.Fatalf("build phpsessd: %v", buildErr)
	}
	return buildBin
}

// bootstrap is the shim's entry point, referenced from the checkout.
func bootstrap(t testing.TB) string {
	t.Helper()
	p := filepath.Join(moduleRoot(t), "php-client", "bootstrap.php")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("php-client bootstrap: %v", err)
	}
	return p
}

// daemon is a phpsessd subprocess owned by one test.
type daemon struct {
	*fpmtest.Daemon
	t   testing.TB
	dir string
}

// startDaemon runs `phpsessd serve` with store and extra flags; it is
// stopped with SIGTERM when the test ends and its log goes to t.Log when
// the test failed.
func startDaemon(t testing.TB, store string, args ...string) *daemon {
	t.Helper()
	return startDaemonIn(t, t.TempDir(), store, args...)
}

func startDaemonIn(t testing.TB, dir, store string, args ...string) *daemon {
	t.Helper()
	d, err := fpmtest.StartDaemon(fpmtest.DaemonConfig{Bin: daemonBin(t), Dir: dir, Store: store, Args: args})
	if err != nil {
		t.Fatalf("start phpsessd: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stop phpsessd: %v", err)
		}
		if t.Failed() {
			t.Logf("phpsessd log (%s):\n%s", store, d.Logs())
		}
	})
	return &daemon{Daemon: d, t: t, dir: dir}
}

// handler is the shim wired to this daemon in the given mode.
func (d *daemon) handler(mode string) fpmtest.Handler {
	return fpmtest.Phpsessd(bootstrap(d.t), d.Address(), mode)
}

// info is INFO <id> from the daemon; the test fails if the daemon can't
// answer.
func (d *daemon) info(id string) *fpmtest.SessionInfo {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, err := fpmtest.Info(ctx, d.Address(), "", id)
	if err != nil {
		d.t.Fatalf("INFO %s: %v", id, err)
	}
	return in
}

// testCtx bounds one test's requests.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// do sends one request and fails the test on transport errors.
func do(t testing.TB, ctx context.Context, p *fpmtest.Pool, req fpmtest.Request) *fpmtest.Response {
	t.Helper()
	r, err := p.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Script, err)
	}
	if r.Status != 200 {
		t.Fatalf("%s: HTTP %d, body %q, stderr %q", req.Script, r.Status, r.Body, r.Stderr)
	}
	return r
}

// decode parses a page's JSON body into v.
func decode(t testing.TB, r *fpmtest.Response, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("page answered %q (stderr %q): %v", r.Body, r.Stderr, err)
	}
}

// login creates a session and returns its id.
func login(t testing.TB, ctx context.Context, p *fpmtest.Pool, h fpmtest.Handler, query string) string {
	t.Helper()
	id, err := p.Login(ctx, h, query)
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Fatal("login returned no session id")
	}
	return id
}

// show reads a session through PHP.
func show(t testing.TB, ctx context.Context, p *fpmtest.Pool, h fpmtest.Handler, id string) *fpmtest.Session {
	t.Helper()
	s, r, err := p.Show(ctx, h, id)
	if err != nil {
		t.Fatal(err)
	}
	if w := r.Warnings(); len(w) > 0 {
		t.Errorf("show.php warned: %q", w)
	}
	return s
}

// noWarnings fails the test when any response carried PHP warnings.
func noWarnings(t testing.TB, what string, res []fpmtest.Result) {
	t.Helper()
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("%s #%d: %v", what, i, r.Err)
			continue
		}
		if w := r.Resp.Warnings(); len(w) > 0 {
			t.Errorf("%s #%d warned: %q", what, i, w)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
