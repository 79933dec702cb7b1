package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/files"
	hredis "github.com/phpsessd/phpsessd/handlers/redis"
	"github.com/phpsessd/phpsessd/internal/testserver"
)

// ---- helpers -------------------------------------------------------------

func init() {
	// go-redis logs every failed dial; the tests assert on returned errors.
	goredis.SetLogger(discardRedisLog{})
}

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

func mctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openT(t testing.TB, rawURL string) handlers.Store {
	t.Helper()
	s, err := handlers.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func filesURL(dir string, query string) string {
	u := "files://" + filepath.ToSlash(dir)
	if query != "" {
		u += "?" + query
	}
	return u
}

// seed writes n sessions through phpsessd's files store (PHP-independent
// tests) and returns their data by id.
func seed(t testing.TB, s handlers.Store, prefix string, n int, size int) map[string]string {
	t.Helper()
	want := map[string]string{}
	pad := strings.Repeat("z", size)
	for i := 0; i < n; i++ {
		id := prefix + strconv.Itoa(i)
		data := "n|i:" + strconv.Itoa(i) + ";pad|s:" + strconv.Itoa(len(pad)) + ":\"" + pad + "\";"
		if _, err := s.Save(context.Background(), id, handlers.Record{Data: []byte(data), Expires: time.Now().Add(time.Hour)}, 0); err != nil {
			t.Fatal(err)
		}
		want[id] = data
	}
	return want
}

func checkCopied(t *testing.T, s handlers.Store, want map[string]string) {
	t.Helper()
	for id, data := range want {
		rec, err := s.Load(context.Background(), id)
		if err != nil || string(rec.Data) != data {
			t.Fatalf("%s at the target = %q, %v; want %q", id, rec.Data, err, data)
		}
	}
}

func countSessions(t *testing.T, s handlers.Store) int {
	t.Helper()
	n := 0
	if err := s.Scan(mctx(t), func(string, time.Time) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// stat reads "name: N" from migrate's summary.
func stat(t *testing.T, out, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `[^:\n]*: (\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("summary has no %q line:\n%s", name, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func wantStats(t *testing.T, out string, kv ...any) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		if got := stat(t, out, kv[i].(string)); got != kv[i+1].(int) {
			t.Errorf("%s = %d, want %d\n%s", kv[i], got, kv[i+1], out)
		}
	}
}

func needPHPExt(t testing.TB, ext string) {
	t.Helper()
	testserver.Need(t, "/usr/bin/php")
	if phpHasExt(ext) {
		return
	}
	if os.Getenv("PHPSESSD_REQUIRE_PHP") == "1" {
		t.Fatalf("the PHP %s extension is required (PHPSESSD_REQUIRE_PHP=1) but not loaded", ext)
	}
	t.Skipf("PHP %s extension not loaded", ext)
}

func redisURL(addr string) string { return "redis://" + addr + "/0?prefix=PHPREDIS_SESSION:" }

func redisStore(t testing.TB, addr string) *hredis.Store {
	t.Helper()
	return openT(t, redisURL(addr)).(*hredis.Store)
}

// phpScript creates sessions with PHP's own handler: one PHP process
// writes every id in $IDS, each with a binary string and some bulk.
const phpWriteScript = `
ini_set('session.use_cookies', '0');
ini_set('session.use_strict_mode', '0');
ini_set('session.gc_probability', '0');
ini_set('session.gc_maxlifetime', '1440');
foreach (explode(',', getenv('IDS')) as $i => $id) {
	session_id($id);
	if (!session_start()) { fwrite(STDERR, "session_start failed\n"); exit(2); }
	$_SESSION['id'] = $id;
	$_SESSION['n'] = $i;
	$_SESSION['bin'] = "x\0y\xff";
	$_SESSION['list'] = [1.5, true, null, str_repeat('q', 40 + $i)];
	session_write_close();
}
`

func runPHP(t testing.TB, env []string, ini []string, code string) string {
	t.Helper()
	// The system php.ini stays in effect so the redis and memcached
	// extensions load as installed; everything the tests rely on is set here.
	args := []string{"-d", "display_errors=stderr", "-d", "session.serialize_handler=php"}
	for _, kv := range ini {
		k, v, _ := strings.Cut(kv, "=")
		// Quoted, or ';' would start an ini comment and '=' confuse the parser.
		args = append(args, "-d", k+`="`+v+`"`)
	}
	args = append(args, "-r", code)
	cmd := exec.Command("php", args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("php: %v\n%s%s", err, stderr.String(), out)
	}
	return string(out)
}

var (
	phpModulesOnce sync.Once
	phpModules     string
)

func phpHasExt(ext string) bool {
	phpModulesOnce.Do(func() {
		out, _ := exec.Command("php", "-m").Output()
		phpModules = string(out)
	})
	return strings.Contains(phpModules, "\n"+ext+"\n")
}

func phpWrite(t testing.TB, handler, savePath string, ids []string) {
	t.Helper()
	runPHP(t, []string{"IDS=" + strings.Join(ids, ",")},
		[]string{"session.save_handler=" + handler, "session.save_path=" + savePath}, phpWriteScript)
}

func phpRead(t testing.TB, handler, savePath, id string) string {
	t.Helper()
	return runPHP(t, []string{"SID=" + id},
		[]string{"session.save_handler=" + handler, "session.save_path=" + savePath,
			"session.use_cookies=0", "session.use_strict_mode=0", "session.gc_probability=0"},
		`session_id(getenv('SID')); session_start(); echo session_encode(); session_write_close();`)
}

func near(d, want, tol time.Duration) bool { return d > want-tol && d < want+tol }

// ---- command-line behaviour ------------------------------------------------

func TestMigrateUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--from", filesURL(dir, "")},
		{"--to", filesURL(dir, "")},
		{"--from", filesURL(dir, ""), "--to", filesURL(dir, "")},
		{"--from", filesURL(dir, ""), "--to", "memory://", "--concurrency", "0"},
		{"--from", filesURL(dir, ""), "--to", "memory://", "extra"},
		{"--from", filesURL(dir, ""), "--to", "memcached://127.0.0.1:1"},
	} {
		if code, _, errOut := runCLI(t, append([]string{"migrate"}, args...)...); code != exitUsage {
			t.Errorf("migrate %v: exit %d, want %d (%s)", args, code, exitUsage, errOut)
		}
	}
}

// TestMigrateBadSourceWritesNothing: a source that cannot be opened or
// read is a clear error and the target stays untouched.
func TestMigrateBadSourceWritesNothing(t *testing.T) {
	dstDir := t.TempDir()
	dst := filesURL(dstDir, "")
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, want string }{
		{"nosuch://x", `unknown store scheme "nosuch"`},
		{filesURL(missing, ""), "no such file or directory"},
		{filesURL(notDir, ""), "not a directory"},
		{filesURL(dstDir, "depth=99"), "depth"},
		{"redis://:s3cret@127.0.0.1:1/0?bogus=1", "bogus"},
		{"redis://127.0.0.1:1/0?password=s3cret&dial_timeout=200ms&op_timeout=500ms", "unavailable"},
		{"%zz://", "not a valid store URL"},
	} {
		code, _, errOut := runCLI(t, "migrate", "--from", tc.from, "--to", dst)
		if code != exitFail || !strings.Contains(errOut, "source") || !strings.Contains(errOut, tc.want) {
			t.Errorf("--from %s: exit %d, stderr %q; want exit 1 mentioning the source and %q", tc.from, code, errOut, tc.want)
		}
		if strings.Contains(errOut, "s3cret") {
			t.Errorf("--from %s: the password leaked into %q", tc.from, errOut)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing source directory was created: %v", err)
	}
	if n := countSessions(t, openT(t, dst)); n != 0 {
		t.Fatalf("%d sessions written to the target", n)
	}
}

// failingSource makes one session unreadable, as a file with broken
// permissions or a damaged disk would (root reads through chmod 000).
type failingSource struct {
	handlers.Store
	bad string
}

func (f failingSource) Load(ctx context.Context, id string) (handlers.Record, error) {
	if id == f.bad {
		return handlers.Record{}, fmt.Errorf("open sess_%s: %w", id, os.ErrPermission)
	}
	return f.Store.Load(ctx, id)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestMigrateUnreadableSessionWritesNothing(t *testing.T) {
	src := openT(t, filesURL(t.TempDir(), ""))
	seed(t, src, "unread", 30, 10)
	dst := openT(t, filesURL(t.TempDir(), ""))
	_, err := migrateStores(mctx(t), failingSource{src, "unread17"}, dst,
		migrateOptions{Precheck: true, Concurrency: 4}, quietLog(), nil)
	if err == nil || !strings.Contains(err.Error(), "unread17") || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err = %v, want one naming the unreadable session", err)
	}
	if n := countSessions(t, dst); n != 0 {
		t.Fatalf("%d sessions written before the unreadable one was found", n)
	}

	if os.Geteuid() == 0 {
		return // the CLI variant needs permissions root ignores
	}
	dir := t.TempDir()
	seed(t, openT(t, filesURL(dir, "")), "perm", 3, 10)
	if err := os.Chmod(filepath.Join(dir, "sess_perm1"), 0); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	code, _, errOut := runCLI(t, "migrate", "--from", filesURL(dir, ""), "--to", filesURL(target, ""))
	if code != exitFail || !strings.Contains(errOut, "perm1") || !strings.Contains(errOut, "nothing was written") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

func TestMigrateDryRunWritesNothing(t *testing.T) {
	srcURL := filesURL(t.TempDir(), "")
	seed(t, openT(t, srcURL), "dry", 4, 10)
	target := filepath.Join(t.TempDir(), "not-yet")
	code, out, errOut := runCLI(t, "migrate", "--from", srcURL, "--to", filesURL(target, ""), "--dry-run")
	if code != exitFail || !strings.Contains(errOut, "target") {
		// A dry run does not create the target directory, so it cannot
		// open a missing one either.
		t.Fatalf("dry run into a missing dir: exit %d, %q %q", code, out, errOut)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("dry run created the target directory")
	}
	dstURL := filesURL(t.TempDir(), "")
	dst := openT(t, dstURL)
	src := openT(t, srcURL)
	rec, _ := src.Load(mctx(t), "dry0")
	if _, err := dst.Save(mctx(t), "dry0", rec, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Save(mctx(t), "dry1", handlers.Record{Data: []byte("other|b:1;")}, 0); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "migrate", "--from", srcURL, "--to", dstURL, "--dry-run")
	if code != exitOK {
		t.Fatalf("dry run: exit %d, %q %q", code, out, errOut)
	}
	wantStats(t, out, "would copy", 2, "identical", 1, "different", 1)
	if n := countSessions(t, dst); n != 2 {
		t.Fatalf("dry run wrote: target has %d sessions", n)
	}
}

// TestMigrateOverwriteAndVerify: a tampered target is left alone and
// reported by --verify; --overwrite repairs it.
func TestMigrateOverwriteAndVerify(t *testing.T) {
	addr := testserver.StartRedis(t).Addr
	srcURL := filesURL(t.TempDir(), "")
	want := seed(t, openT(t, srcURL), "tamper", 5, 100)
	code, out, errOut := runCLI(t, "migrate", "--from", srcURL, "--to", redisURL(addr), "--verify")
	if code != exitOK {
		t.Fatalf("migrate: exit %d, %q %q", code, out, errOut)
	}
	wantStats(t, out, "copied", 5, "verified", 5, "mismatched", 0)

	rs := redisStore(t, addr)
	key, _ := rs.Keys("tamper3")
	if err := rs.Client().Do(mctx(t), "SET", key, "evil|b:1;", "KEEPTTL").Err(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "migrate", "--from", srcURL, "--to", redisURL(addr), "--verify")
	if code != exitFail || !strings.Contains(errOut, "tamper3") {
		t.Fatalf("verify of a tampered target: exit %d, %q %q", code, out, errOut)
	}
	wantStats(t, out, "copied", 0, "identical", 4, "different", 1, "verified", 4, "mismatched", 1)
	if rec, _ := rs.Load(mctx(t), "tamper3"); string(rec.Data) != "evil|b:1;" {
		t.Fatalf("a differing target session was replaced without --overwrite: %q", rec.Data)
	}

	code, out, errOut = runCLI(t, "migrate", "--from", srcURL, "--to", redisURL(addr), "--verify", "--overwrite")
	if code != exitOK {
		t.Fatalf("--overwrite: exit %d, %q %q", code, out, errOut)
	}
	wantStats(t, out, "overwritten", 1, "identical", 4, "verified", 5, "mismatched", 0)
	checkCopied(t, rs, want)
}

// cancelAfter cancels the migration's context after n successful writes,
// like an operator pressing Ctrl-C mid-way.
type cancelAfter struct {
	handlers.Store
	n      int64
	saves  atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Save(ctx context.Context, id string, rec handlers.Record, expect uint64) (uint64, error) {
	v, err := c.Store.Save(ctx, id, rec, expect)
	if err == nil && c.saves.Add(1) == c.n {
		c.cancel()
	}
	return v, err
}

func TestMigrateResumesAfterInterruption(t *testing.T) {
	const total = 120
	src := openT(t, filesURL(t.TempDir(), "depth=1"))
	want := seed(t, src, "resume", total, 50)
	dst := openT(t, filesURL(t.TempDir(), ""))

	ctx, cancel := context.WithCancel(mctx(t))
	defer cancel()
	o := migrateOptions{Precheck: true, Concurrency: 4}
	st, err := migrateStores(ctx, src, &cancelAfter{Store: dst, n: 40, cancel: cancel}, o, quietLog(), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: err = %v, want context.Canceled", err)
	}
	partial := countSessions(t, dst)
	if partial < 40 || partial >= total || st.Copied < 40 {
		t.Fatalf("interrupted run copied %d (target holds %d) of %d", st.Copied, partial, total)
	}

	st, err = migrateStores(mctx(t), src, dst, o, quietLog(), nil)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if st.Copied+st.Identical != total || st.Identical != int64(partial) || st.Different != 0 {
		t.Fatalf("resumed run: copied %d, identical %d, different %d; target had %d of %d",
			st.Copied, st.Identical, st.Different, partial, total)
	}
	checkCopied(t, dst, want)
}

// Between phpsessd stores the engine's metadata and "never expires"
// travel too.
func TestMigrateKeepsMetaAndForever(t *testing.T) {
	src := openT(t, filesURL(t.TempDir(), ""))
	ctx := mctx(t)
	if _, err := src.Save(ctx, "meta1", handlers.Record{Data: []byte("a|i:1;"), Meta: []byte("fmt=php")}, 0); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(90 * time.Minute)
	if _, err := src.Save(ctx, "meta2", handlers.Record{Data: []byte("b|i:2;"), Expires: exp}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Save(ctx, "meta3", handlers.Record{Data: []byte("c|i:3;"), Expires: time.Now().Add(-time.Minute)}, 0); err != nil {
		t.Fatal(err)
	}
	dst := openT(t, filesURL(t.TempDir(), "ttl=600"))
	st, err := migrateStores(ctx, src, dst, migrateOptions{Verify: true, Precheck: true}, quietLog(), nil)
	if err != nil || st.Copied != 2 || st.Verified != 2 || st.Listed != 2 {
		t.Fatalf("migrate: %+v, %v", st, err)
	}
	r1, err := dst.Load(ctx, "meta1")
	if err != nil || string(r1.Meta) != "fmt=php" || !r1.Expires.IsZero() {
		t.Fatalf("meta1 = %+v, %v", r1, err)
	}
	r2, err := dst.Load(ctx, "meta2")
	if err != nil || !near(r2.Expires.Sub(exp), 0, time.Second) {
		t.Fatalf("meta2 expires %v, want %v", r2.Expires, exp)
	}
}

func TestMigrateProgressLine(t *testing.T) {
	p := &progress{phase: "copying", total: 100, began: time.Now().Add(-10 * time.Second)}
	p.done.Store(50)
	line := p.line(p.began.Add(10 * time.Second))
	for _, want := range []string{"copying 50/100", "(50.0%)", "5 sessions/s", "ETA 10s"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
	if isTerminal(io.Discard) {
		t.Error("a non-file writer counted as a terminal")
	}
	// Not a terminal: periodic log lines.
	w := &testserver.SyncBuffer{} // written by the progress goroutine
	p = newProgress(w, slog.New(slog.NewTextHandler(w, nil)), 5*time.Millisecond)
	p.start("copying", 10)
	p.set(3)
	time.Sleep(30 * time.Millisecond)
	p.stop()
	out := w.String()
	if !strings.Contains(out, "migrate: progress") || !strings.Contains(out, "done=3") || !strings.Contains(out, "total=10") {
		t.Errorf("no periodic progress line: %q", out)
	}
}

// ---- real PHP --------------------------------------------------------------

// TestMigratePHPFilesToRedis: sessions written by PHP's files handler (flat
// and with depth) arrive byte-identical in Redis with their remaining
// lifetime, expired ones stay behind, phpredis reads the result, and a
// rerun changes nothing.
func TestMigratePHPFilesToRedis(t *testing.T) {
	testserver.Need(t, "/usr/bin/php")
	addr := testserver.StartRedis(t).Addr
	for db, depth := range []int{0, 2} {
		t.Run("depth"+strconv.Itoa(depth), func(t *testing.T) {
			dir := t.TempDir()
			savePath := dir
			if depth > 0 {
				savePath = strconv.Itoa(depth) + ";" + dir
				// PHP expects the depth directories to exist (mod_files.sh).
				if err := os.MkdirAll(filepath.Join(dir, "m", "i"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			var ids []string
			for i := 0; i < 12; i++ {
				ids = append(ids, "mig"+strconv.Itoa(db)+"x"+strconv.Itoa(i))
			}
			phpWrite(t, "files", savePath, ids)
			fromURL, err := files.SavePathURL(savePath) // as an operator converts php.ini's save_path
			if err != nil {
				t.Fatal(err)
			}
			path := func(id string) string {
				if depth == 0 {
					return filepath.Join(dir, "sess_"+id)
				}
				return filepath.Join(dir, id[:1], id[1:2], "sess_"+id)
			}
			now := time.Now()
			// ids[0] expired (PHP's gc would remove it), ids[1] half-way.
			if err := os.Chtimes(path(ids[0]), now, now.Add(-2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path(ids[1]), now, now.Add(-600*time.Second)); err != nil {
				t.Fatal(err)
			}
			to := "redis://" + addr + "/" + strconv.Itoa(db) + "?prefix=PHPREDIS_SESSION:"
			code, out, errOut := runCLI(t, "migrate", "--from", fromURL, "--to", to, "--verify", "--concurrency", "3")
			if code != exitOK {
				t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errOut)
			}
			wantStats(t, out, "listed", 11, "copied", 11, "verified", 11, "mismatched", 0)

			rs := openT(t, to)
			ctx := mctx(t)
			for _, id := range ids[1:] {
				raw, err := os.ReadFile(path(id))
				if err != nil {
					t.Fatal(err)
				}
				rec, err := rs.Load(ctx, id)
				if err != nil || string(rec.Data) != string(raw) {
					t.Fatalf("%s in Redis = %q, %v; PHP wrote %q", id, rec.Data, err, raw)
				}
				fi, _ := os.Stat(path(id))
				if wantExp := fi.ModTime().Add(1440 * time.Second); !near(rec.Expires.Sub(wantExp), 0, 2*time.Second) {
					t.Fatalf("%s expires %v, want %v (mtime + gc_maxlifetime)", id, rec.Expires, wantExp)
				}
			}
			if rec, _ := rs.Load(ctx, ids[1]); !near(time.Until(rec.Expires), 840*time.Second, 3*time.Second) {
				t.Fatalf("half-way session has %v left, want about 840s", time.Until(rec.Expires))
			}
			if _, err := rs.Load(ctx, ids[0]); !errors.Is(err, handlers.ErrNotFound) {
				t.Fatalf("expired session migrated: %v", err)
			}
			if phpHasExt("redis") {
				got := phpRead(t, "redis", "tcp://"+addr+"?database="+strconv.Itoa(db), ids[5])
				raw, _ := os.ReadFile(path(ids[5]))
				if got != string(raw) {
					t.Fatalf("phpredis reads %q, PHP's files handler wrote %q", got, raw)
				}
			}

			code, out, errOut = runCLI(t, "migrate", "--from", fromURL, "--to", to)
			if code != exitOK {
				t.Fatalf("rerun: exit %d\n%s\n%s", code, out, errOut)
			}
			wantStats(t, out, "copied", 0, "identical", 11, "different", 0)
		})
	}
}

// TestMigratePHPRedisToFiles: sessions phpredis wrote move into a files
// directory that PHP's files handler then reads unchanged.
func TestMigratePHPRedisToFiles(t *testing.T) {
	needPHPExt(t, "redis")
	addr := testserver.StartRedis(t).Addr
	ids := []string{"phpr1", "phpr2", "phpr3"}
	phpWrite(t, "redis", "tcp://"+addr, ids)
	rs := redisStore(t, addr)
	k, _ := rs.Keys("phpr2")
	if err := rs.Client().Expire(mctx(t), k, 500*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "migrate", "--from", redisURL(addr), "--to", filesURL(dir, ""), "--verify")
	if code != exitOK {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errOut)
	}
	wantStats(t, out, "copied", 3, "verified", 3)
	fs := openT(t, filesURL(dir, ""))
	// Checked before PHP reads it: PHP's lazy write refreshes the mtime.
	if rec, err := fs.Load(mctx(t), "phpr2"); err != nil || !near(time.Until(rec.Expires), 500*time.Second, 3*time.Second) {
		t.Fatalf("phpr2 in files expires in %v (%v), want about 500s", time.Until(rec.Expires), err)
	}
	for _, id := range ids {
		src, _ := rs.Load(mctx(t), id)
		if got := phpRead(t, "files", dir, id); got != string(src.Data) {
			t.Fatalf("PHP's files handler reads %q, phpredis wrote %q", got, src.Data)
		}
	}
}

// TestMigratePHPMemcachedToRedis: php-memcached sessions arrive in Redis
// byte-identical, with their lifetime, readable by phpredis.
func TestMigratePHPMemcachedToRedis(t *testing.T) {
	needPHPExt(t, "memcached")
	mc := testserver.StartMemcached(t).Addr
	addr := testserver.StartRedis(t).Addr
	ids := []string{"phpm1", "phpm2", "phpm3", "phpm4"}
	phpWrite(t, "memcached", mc, ids)
	code, out, errOut := runCLI(t, "migrate", "--from", "memcached://"+mc+"?prefix="+url.QueryEscape("memc.sess.key."), "--to", redisURL(addr), "--verify")
	if code != exitOK {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errOut)
	}
	wantStats(t, out, "listed", 4, "copied", 4, "verified", 4)
	rs := redisStore(t, addr)
	for _, id := range ids {
		rec, err := rs.Load(mctx(t), id)
		if err != nil || !strings.Contains(string(rec.Data), `id|s:5:"`+id+`"`) {
			t.Fatalf("%s in Redis = %q, %v", id, rec.Data, err)
		}
		if !near(time.Until(rec.Expires), 1440*time.Second, 5*time.Second) {
			t.Fatalf("%s expires in %v, want about 1440s", id, time.Until(rec.Expires))
		}
		if phpHasExt("redis") {
			if got := phpRead(t, "redis", "tcp://"+addr, id); got != string(rec.Data) {
				t.Fatalf("phpredis reads %q, want %q", got, rec.Data)
			}
		}
	}
}
