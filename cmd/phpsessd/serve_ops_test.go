package main

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/protocol"
)

// serve with encryption keys, metrics and the security hook all wired:
// sessions reach the disk encrypted and still read back as PHP wrote
// them, /metrics moves with traffic, and a wrong token shows up as an
// auth_failure security event.
func TestServeOperationsWiring(t *testing.T) {
	dir, err := os.MkdirTemp("", "psdo")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	keys := writeFile(t, filepath.Join(dir, "keys"), "k1:"+key+"\n")
	store := filepath.Join(dir, "sessions")
	if err := os.MkdirAll(store, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "p.sock")
	addrs, stop, logs := startServe(t, map[string]string{"PHPSESSD_DATA_DIR": dir},
		"--listen", "unix://"+sock, "--listen", "tcp://127.0.0.1:0", "--token", "right",
		"--store", "files://"+store, "--keys-file", keys, "--metrics-listen", "127.0.0.1:0")
	m := regexp.MustCompile(`http://127\.0\.0\.1:\d+/metrics`).FindString(logs.String())
	if m == "" {
		t.Fatalf("no metrics address in the log:\n%s", logs.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := protocol.Dial(ctx, addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	const id = "opswiring0123456789abcdefgh"
	const data = `secret|s:6:"hunter";`
	if _, err := c.Do(ctx, "READ", id, "FORMAT", "php"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "WRITE", id, data, "FORMAT", "php"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(store, "sess_"+id))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "hunter") {
		t.Fatalf("session stored in clear with --keys-file: %q", raw)
	}
	if rep, err := c.Do(ctx, "READ", id, "FORMAT", "php"); err != nil || rep.Array[0].Text() != data {
		t.Fatalf("READ of the sealed session: %v %v", err, rep)
	}
	c.Close()

	tc, err := protocol.Dial(ctx, addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.Auth(ctx, "wrong"); !protocol.IsCode(err, "WRONGPASS") {
		t.Fatalf("AUTH wrong: %v", err)
	}
	tc.Close()

	resp, err := http.Get(m)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^phpsessd_reads_total [1-9]`),
		regexp.MustCompile(`(?m)^phpsessd_writes_total [1-9]`),
		regexp.MustCompile(`(?m)^phpsessd_auth_failures_total 1$`),
		regexp.MustCompile(`(?m)^phpsessd_security_events_total\{kind="auth_failure"\} 1$`),
		regexp.MustCompile(`(?m)^phpsessd_commands_total\{command="WRITE"\} 1$`),
	} {
		if !want.Match(body) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("serve exit %d:\n%s", code, logs.String())
	}
}
