//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package files

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
)

// phpScript drives PHP's own files handler. ACT picks what it does inside
// one session_start/session_write_close.
const phpScript = `<?php
ini_set('session.use_cookies', '0');
ini_set('session.use_strict_mode', '0');
ini_set('session.serialize_handler', 'php');
ini_set('session.gc_probability', getenv('GC') === '1' ? '1' : '0');
ini_set('session.gc_divisor', '1');
ini_set('session.gc_maxlifetime', '1440');
session_save_path(getenv('SP'));
session_id(getenv('SID'));
if (!session_start()) { fwrite(STDERR, "session_start failed\n"); exit(2); }
switch (getenv('ACT')) {
case 'write':
	$_SESSION['a'] = 1;
	$_SESSION['bin'] = "x\0y";
	break;
case 'dump':
	echo session_encode();
	break;
case 'hold':
case 'holdread':
	echo "locked\n";
	usleep(700000);
	if (getenv('ACT') === 'hold') $_SESSION['php'] = 'was here';
	break;
}
session_write_close();
`

func phpBinary(t *testing.T) string {
	t.Helper()
	php, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("PHPSESSD_REQUIRE_PHP") == "1" {
			t.Fatalf("php-cli not found and PHPSESSD_REQUIRE_PHP=1: %v", err)
		}
		t.Skip("php-cli not found; set PHPSESSD_REQUIRE_PHP=1 to make this a failure")
	}
	return php
}

type phpRunner struct {
	t      *testing.T
	php    string
	script string
}

func newPHP(t *testing.T) *phpRunner {
	php := phpBinary(t)
	script := filepath.Join(t.TempDir(), "sess.php")
	if err := os.WriteFile(script, []byte(phpScript), 0o600); err != nil {
		t.Fatal(err)
	}
	return &phpRunner{t: t, php: php, script: script}
}

func (p *phpRunner) cmd(savePath, id, act string, env ...string) *exec.Cmd {
	c := exec.Command(p.php, "-n", p.script)
	c.Env = append(os.Environ(), "SP="+savePath, "SID="+id, "ACT="+act)
	c.Env = append(c.Env, env...)
	return c
}

func (p *phpRunner) run(savePath, id, act string, env ...string) string {
	p.t.Helper()
	out, err := p.cmd(savePath, id, act, env...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Warning") {
		p.t.Fatalf("php %s: %v\n%s", act, err, out)
	}
	return string(out)
}

const phpID = "abcdef0123456789abcdef01"

func TestPHPInterop(t *testing.T) {
	p := newPHP(t)
	for _, depth := range []int{0, 2} {
		t.Run(map[int]string{0: "depth0", 2: "depth2"}[depth], func(t *testing.T) {
			ctx := context.Background()
			s := openDir(t, "?depth="+strconv.Itoa(depth))
			savePath := s.Dir()
			if depth > 0 {
				savePath = strconv.Itoa(depth) + ";" + s.Dir()
				// PHP wants depth directories to exist (mod_files.sh).
				os.MkdirAll(filepath.Join(s.Dir(), "a", "b"), 0o700)
			}

			// PHP writes, we read the very same bytes.
			p.run(savePath, phpID, "write")
			want := "a|i:1;bin|s:3:\"x\x00y\";"
			rec, err := s.Load(ctx, phpID)
			if err != nil {
				t.Fatal(err)
			}
			if string(rec.Data) != want {
				t.Fatalf("Load = %q, want PHP's %q", rec.Data, want)
			}
			if rec.Version != version([]byte(want)) || rec.Expires.Before(time.Now().Add(1430*time.Second)) {
				t.Fatalf("PHP-written session: version %d, expires %v", rec.Version, rec.Expires)
			}

			// We write, PHP reads the very same bytes.
			ours := "user|s:5:\"alice\";n|i:7;bin|s:2:\"\x00\xff\";"
			if _, err := s.Save(ctx, phpID, handlers.Record{Data: []byte(ours), Meta: []byte("m"), Expires: time.Now().Add(time.Hour)}, rec.Version); err != nil {
				t.Fatal(err)
			}
			if got := p.run(savePath, phpID, "dump"); got != ours {
				t.Fatalf("PHP read %q, want %q", got, ours)
			}

			// A new session created by us, in a depth directory PHP never
			// saw, is found by PHP.
			fresh := "zyxw0123456789abcdef0123"
			if _, err := s.Save(ctx, fresh, handlers.Record{Data: []byte("f|b:1;"), Expires: time.Now().Add(time.Hour)}, 0); err != nil {
				t.Fatal(err)
			}
			if got := p.run(savePath, fresh, "dump"); got != "f|b:1;" {
				t.Fatalf("PHP read %q from a session we created", got)
			}
			// PHP's lazy write only touched it: still the same version.
			rec, err = s.Load(ctx, fresh)
			if err != nil || rec.Version != version([]byte("f|b:1;")) {
				t.Fatalf("after PHP's read: %+v, %v", rec, err)
			}
		})
	}
}

// While PHP holds the session (session_start ... session_write_close), our
// Save waits for its flock and then compares against what PHP wrote.
func TestPHPLockInterop(t *testing.T) {
	p := newPHP(t)
	s := openDir(t, "")
	ctx := context.Background()
	v0, err := s.Save(ctx, phpID, handlers.Record{Data: []byte("k|i:0;"), Expires: time.Now().Add(time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := p.cmd(s.Dir(), phpID, "hold")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Wait()
		t.Fatalf("php said %q, %v", line, err)
	}
	held := time.Now()

	// Reads wait too (PHP may be writing in place); a deadline ends them.
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = s.Load(dctx, phpID)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load while PHP holds the session = %v, want DeadlineExceeded", err)
	}

	_, err = s.Save(ctx, phpID, handlers.Record{Data: []byte("k|i:1;"), Expires: time.Now().Add(time.Hour)}, v0)
	waited := time.Since(held)
	if werr := cmd.Wait(); werr != nil {
		t.Fatalf("php: %v", werr)
	}
	if waited < 400*time.Millisecond {
		t.Fatalf("Save returned after %v, before PHP released its lock", waited)
	}
	if !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save after PHP changed the session = %v, want ErrVersionMismatch", err)
	}
	rec, err := s.Load(ctx, phpID)
	if err != nil || string(rec.Data) != `k|i:0;php|s:8:"was here";` {
		t.Fatalf("Load = %q, %v; want PHP's write", rec.Data, err)
	}
	if _, err := s.Save(ctx, phpID, handlers.Record{Data: []byte(`k|i:1;php|s:8:"was here";`), Expires: time.Now().Add(time.Hour)}, rec.Version); err != nil {
		t.Fatalf("re-merged Save: %v", err)
	}
	if got := p.run(s.Dir(), phpID, "dump"); got != `k|i:1;php|s:8:"was here";` {
		t.Fatalf("PHP read %q", got)
	}
}

// A PHP request that only reads delays our Save, which then succeeds.
func TestPHPLockReadOnly(t *testing.T) {
	p := newPHP(t)
	s := openDir(t, "")
	ctx := context.Background()
	v0, err := s.Save(ctx, phpID, handlers.Record{Data: []byte("k|i:0;"), Expires: time.Now().Add(time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := p.cmd(s.Dir(), phpID, "holdread")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		cmd.Wait()
		t.Fatalf("php said %q, %v", line, err)
	}
	held := time.Now()
	v1, err := s.Save(ctx, phpID, handlers.Record{Data: []byte("k|i:1;"), Expires: time.Now().Add(time.Hour)}, v0)
	waited := time.Since(held)
	if werr := cmd.Wait(); werr != nil {
		t.Fatalf("php: %v", werr)
	}
	if err != nil || waited < 400*time.Millisecond {
		t.Fatalf("Save = %v after %v; want success once PHP released its lock", err, waited)
	}
	if rec, err := s.Load(ctx, phpID); err != nil || rec.Version != v1 || string(rec.Data) != "k|i:1;" {
		t.Fatalf("Load = %q v%d, %v", rec.Data, rec.Version, err)
	}
}

// PHP's gc (mtime + gc_maxlifetime) and our expiry agree because a write
// sets mtime = expires - ttl.
func TestPHPGCAgrees(t *testing.T) {
	p := newPHP(t)
	s := openDir(t, "?ttl=1440")
	ctx := context.Background()
	if _, err := s.Save(ctx, "live0123456789", handlers.Record{Data: []byte("l|i:1;"), Expires: time.Now().Add(20 * time.Second)}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, "dead0123456789", handlers.Record{Data: []byte("d|i:1;"), Expires: time.Now().Add(-5 * time.Second)}, 0); err != nil {
		t.Fatal(err)
	}
	p.run(s.Dir(), "other0123456789", "dump", "GC=1")
	if _, err := os.Stat(filepath.Join(s.Dir(), "sess_live0123456789")); err != nil {
		t.Fatalf("PHP's gc removed a live session: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "sess_dead0123456789")); !os.IsNotExist(err) {
		t.Fatalf("PHP's gc kept an expired session: %v", err)
	}
	// Sweep removes the orphaned sidecar PHP's gc left behind.
	if _, err := s.Sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), metaDir, "dead0123456789")); !os.IsNotExist(err) {
		t.Fatalf("orphan sidecar survived: %v", err)
	}
}
