package fpmtest

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// php-fpm joins the log lines of one request into one stderr record;
// counting lines would miss all but the first warning.
func TestWarningsSplitsJoinedMessages(t *testing.T) {
	r := &Response{Stderr: "PHP message: PHP Warning:  one in /a.php on line 1; PHP message: PHP Warning:  two in Unknown on line 0\n" +
		"PHP message: PHP Notice:  three\nsomething else\n"}
	w := r.Warnings()
	if len(w) != 3 || !strings.HasPrefix(w[0], "PHP Warning:  one") || !strings.HasPrefix(w[1], "PHP Warning:  two") || !strings.HasPrefix(w[2], "PHP Notice") {
		t.Fatalf("Warnings() = %q", w)
	}
	if n := len((&Response{}).Warnings()); n != 0 {
		t.Fatalf("empty stderr gave %d warnings", n)
	}
}

func TestSessionCookieTakesTheLastLiveOne(t *testing.T) {
	h := http.Header{}
	h.Add("Set-Cookie", "PHPSESSID=old; path=/")
	h.Add("Set-Cookie", "other=x")
	h.Add("Set-Cookie", "PHPSESSID=new; path=/; HttpOnly")
	if got := (&Response{Header: h}).SessionCookie(""); got != "new" {
		t.Fatalf("SessionCookie = %q, want new", got)
	}
	h = http.Header{}
	h.Add("Set-Cookie", "PHPSESSID=deleted; expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0")
	if got := (&Response{Header: h}).SessionCookie(""); got != "" {
		t.Fatalf("a deleting cookie gave %q", got)
	}
}

func TestEncodeINIQuotesEveryValue(t *testing.T) {
	got := encodeINI(map[string]string{"b": "tcp://127.0.0.1:1?x=1", "a": "", "c": `say "hi"`})
	want := "a=\"\"\nb=\"tcp://127.0.0.1:1?x=1\"\nc=\"say hi\"\n"
	if got != want {
		t.Fatalf("encodeINI = %q, want %q", got, want)
	}
}

// Every handler must set every key any other handler sets: php-fpm keeps
// PHP_VALUE keys in the child, so a missing one would leak in from an
// earlier request.
func TestHandlersSetTheSameSessionKeys(t *testing.T) {
	hs := []Handler{Files("/tmp/x"), Phpsessd("/b.php", "unix:///d.sock", "locked"), PHPRedis("127.0.0.1:1", true, false)}
	for _, h := range hs {
		for k := range hs[0].INI {
			if _, ok := h.INI[k]; !ok {
				t.Errorf("%s does not set %s", h.Name, k)
			}
		}
	}
	if hs[0].INI["auto_prepend_file"] != "" || hs[1].INI["auto_prepend_file"] != "/b.php" {
		t.Errorf("auto_prepend_file: files %q, phpsessd %q", hs[0].INI["auto_prepend_file"], hs[1].INI["auto_prepend_file"])
	}
	w := hs[1].With(map[string]string{"session.use_strict_mode": "1"}, map[string]string{"X": "1"})
	if w.INI["session.use_strict_mode"] != "1" || hs[1].INI["session.use_strict_mode"] != "0" || w.Params["X"] != "1" {
		t.Errorf("With changed the original or did not layer: %v / %v", w.INI, hs[1].INI)
	}
}

func TestRESPConnParsesEveryReplyType(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	replies := []string{"+PONG\r\n", "-ERR nope\r\n", ":42\r\n", "$3\r\na\x00c\r\n", "$-1\r\n", "*2\r\n+a\r\n:1\r\n"}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for _, r := range replies {
			if _, err := c.Read(buf); err != nil {
				return
			}
			c.Write([]byte(r))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := DialRESP(ctx, "unix://"+sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Do(time.Second, "PING"); err != nil || v != "PONG" {
		t.Fatalf("simple string: %v %v", v, err)
	}
	if _, err := c.Do(time.Second, "X"); err == nil || err.(*RESPError).Code() != "ERR" {
		t.Fatalf("error reply: %v", err)
	}
	if v, _ := c.Do(time.Second, "X"); v != int64(42) {
		t.Fatalf("integer: %v", v)
	}
	if v, _ := c.Do(time.Second, "X"); v != "a\x00c" {
		t.Fatalf("bulk: %q", v)
	}
	if v, err := c.Do(time.Second, "X"); v != nil || err != nil {
		t.Fatalf("null: %v %v", v, err)
	}
	if v, _ := c.Do(time.Second, "X"); len(v.([]any)) != 2 {
		t.Fatalf("array: %v", v)
	}
}

func TestWritePagesAndModuleRoot(t *testing.T) {
	dir := t.TempDir()
	if err := WritePages(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"hits.php", "show.php", "counter.php", "set.php"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("page %s: %v", p, err)
		}
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "phpsessd")); err != nil {
		t.Errorf("module root %s has no cmd/phpsessd: %v", root, err)
	}
}
