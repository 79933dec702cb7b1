package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/sealed"
)

// sealKey is a deterministic test key: id and a secret filled with b.
func sealKey(id string, b byte) sealed.Key {
	k := sealed.Key{ID: id}
	for i := range k.Secret {
		k.Secret[i] = b
	}
	return k
}

// writeSealKeys writes a key file (first key current) with mode 0600.
func writeSealKeys(t *testing.T, keys ...sealed.Key) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s:%s\n", k.ID, base64.StdEncoding.EncodeToString(k.Secret[:]))
	}
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sealFilesURL(dir string) string { return "files://" + filepath.ToSlash(dir) }

func openSealT(t *testing.T, rawURL string, keys ...sealed.Key) handlers.Store {
	t.Helper()
	s, err := handlers.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	ss, err := sealed.New(s, sealed.Options{Keys: keys, RequireEncrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return ss
}

// sealSeed writes n sessions (every third one large, so compression has
// something to do) and returns their data by id.
func sealSeed(t *testing.T, s handlers.Store, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("sealmig%020d", i)
		secret := fmt.Sprintf("secret-%d-%s", i, strings.Repeat("x", 10))
		if i%3 == 0 {
			secret += strings.Repeat("y", 4000)
		}
		data := fmt.Sprintf("user|s:%d:\"%s\";", len(secret), secret)
		if _, err := s.Save(context.Background(), id, handlers.Record{Data: []byte(data), Expires: time.Now().Add(time.Hour)}, 0); err != nil {
			t.Fatal(err)
		}
		want[id] = data
	}
	return want
}

// rawKeyID reads a stored record's key id from the sealed header (magic,
// version, flags, id length, id); "" when the record is not encrypted.
func rawKeyID(t *testing.T, raw []byte) string {
	t.Helper()
	if len(raw) < 7 || !bytes.Equal(raw[:4], []byte{0x00, 0x01, 'P', 'S'}) || raw[5]&0x01 == 0 {
		return ""
	}
	n := int(raw[6])
	if len(raw) < 7+n {
		t.Fatalf("record header truncated: % x", raw)
	}
	return string(raw[7 : 7+n])
}

// dirSnapshot maps every file under dir to its content, to show that a
// failed run wrote nothing.
func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigrateSealsPlainFiles(t *testing.T) {
	srcDir, dstDir := t.TempDir(), t.TempDir()
	want := sealSeed(t, openSealT(t, sealFilesURL(srcDir)), 9)
	k1 := sealKey("k1", 1)
	kf := writeSealKeys(t, k1)

	code, out, errOut := runCLI(t, "migrate", "--from", sealFilesURL(srcDir), "--to", sealFilesURL(dstDir),
		"--to-keys", kf, "--to-compress-over", "1KiB", "--verify")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	wantSealStats(t, out, "copied", len(want), "verified", len(want))

	// Nothing of any session is readable on disk.
	files := dirSnapshot(t, dstDir)
	if len(files) == 0 {
		t.Fatal("target directory is empty")
	}
	for p, content := range files {
		if strings.Contains(content, "secret-") || strings.Contains(content, "yyyy") {
			t.Errorf("%s holds plaintext session data", p)
		}
	}
	raw := openSealT(t, sealFilesURL(dstDir))
	sealedDst := openSealT(t, sealFilesURL(dstDir), k1)
	for id, data := range want {
		rec, err := raw.Load(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := rawKeyID(t, rec.Data); got != "k1" {
			t.Errorf("%s stored under key %q, want k1", id, got)
		}
		if len(data) > 4000 && len(rec.Data) >= len(data) {
			t.Errorf("%s: %d stored bytes for %d bytes of data: not compressed", id, len(rec.Data), len(data))
		}
		got, err := sealedDst.Load(context.Background(), id)
		if err != nil || string(got.Data) != data {
			t.Errorf("%s through the sealed store = %q, %v; want the source bytes", id, got.Data, err)
		}
	}

	// A rerun finds every copy identical (compared as plain data).
	code, out, errOut = runCLI(t, "migrate", "--from", sealFilesURL(srcDir), "--to", sealFilesURL(dstDir), "--to-keys", kf)
	if code != exitOK {
		t.Fatalf("rerun: exit %d\n%s\n%s", code, out, errOut)
	}
	wantSealStats(t, out, "copied", 0, "identical", len(want))

	// And back out of the sealed store with --from-keys.
	plainDir := t.TempDir()
	code, out, errOut = runCLI(t, "migrate", "--from", sealFilesURL(dstDir), "--from-keys", kf, "--to", sealFilesURL(plainDir), "--verify")
	if code != exitOK {
		t.Fatalf("unseal: exit %d\n%s\n%s", code, out, errOut)
	}
	wantSealStats(t, out, "copied", len(want), "verified", len(want))
	plain := openSealT(t, sealFilesURL(plainDir))
	for id, data := range want {
		rec, err := plain.Load(context.Background(), id)
		if err != nil || string(rec.Data) != data {
			t.Errorf("%s unsealed = %q, %v", id, rec.Data, err)
		}
	}
}

func TestMigrateResealRotatesKey(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := sealKey("k1", 1), sealKey("k2", 2)
	underK1, err := sealed.New(openSealT(t, sealFilesURL(dir)), sealed.Options{Keys: []sealed.Key{k1}})
	if err != nil {
		t.Fatal(err)
	}
	want := sealSeed(t, underK1, 7)
	// One record from before sealing was turned on: reseal encrypts it too.
	plainID := "sealmigplain0000000000000"
	plainData := "legacy|s:3:\"old\";"
	if _, err := openSealT(t, sealFilesURL(dir)).Save(context.Background(), plainID, handlers.Record{Data: []byte(plainData), Expires: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	want[plainID] = plainData

	kf := writeSealKeys(t, k2, k1)
	code, out, errOut := runCLI(t, "migrate", "--reseal", "--to", sealFilesURL(dir), "--to-keys", kf)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	wantSealStats(t, out, "scanned", len(want), "resealed", len(want), "failed", 0)

	raw := openSealT(t, sealFilesURL(dir))
	// Only k2 configured, encryption required: every record must open.
	onlyK2 := openSealT(t, sealFilesURL(dir), k2)
	for id, data := range want {
		rec, err := raw.Load(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := rawKeyID(t, rec.Data); got != "k2" {
			t.Errorf("%s is under key %q after reseal, want k2", id, got)
		}
		got, err := onlyK2.Load(context.Background(), id)
		if err != nil || string(got.Data) != data {
			t.Errorf("%s with only k2 = %q, %v; want %q", id, got.Data, err, data)
		}
	}

	code, out, errOut = runCLI(t, "migrate", "--reseal", "--to", sealFilesURL(dir), "--to-keys", kf)
	if code != exitOK {
		t.Fatalf("second reseal: exit %d\n%s\n%s", code, out, errOut)
	}
	wantSealStats(t, out, "resealed", 0, "already current", len(want))
}

func TestMigrateSealKeyErrorsWriteNothing(t *testing.T) {
	srcDir := t.TempDir()
	k1, k3 := sealKey("k1", 1), sealKey("k3", 3)
	underK1, err := sealed.New(openSealT(t, sealFilesURL(srcDir)), sealed.Options{Keys: []sealed.Key{k1}})
	if err != nil {
		t.Fatal(err)
	}
	sealSeed(t, underK1, 4)
	if _, err := openSealT(t, sealFilesURL(srcDir)).Save(context.Background(), "sealmigplain0000000000000",
		handlers.Record{Data: []byte("a|i:1;"), Expires: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	before := dirSnapshot(t, srcDir)
	wrongKeys := writeSealKeys(t, k3)
	missing := filepath.Join(t.TempDir(), "no-such-keys")
	openKeys := writeSealKeys(t, k1)
	if err := os.Chmod(openKeys, 0o644); err != nil {
		t.Fatal(err)
	}
	notKeys := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(notKeys, []byte("k1:not-base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"reseal, key file lacks the old key", []string{"--reseal", "--to", sealFilesURL(srcDir), "--to-keys", wrongKeys},
			[]string{"4 of 5 sessions cannot be opened", "key not configured", "nothing was written"}},
		{"reseal, missing key file", []string{"--reseal", "--to", sealFilesURL(srcDir), "--to-keys", missing},
			[]string{"--to-keys", "no-such-keys", "nothing was written"}},
		{"reseal, world-readable key file", []string{"--reseal", "--to", sealFilesURL(srcDir), "--to-keys", openKeys},
			[]string{"--to-keys", "other users", "nothing was written"}},
		{"copy, wrong --from-keys", []string{"--from", sealFilesURL(srcDir), "--from-keys", wrongKeys, "--to", "TARGET"},
			[]string{"key not configured", "nothing was written"}},
		{"copy, missing --to-keys", []string{"--from", sealFilesURL(srcDir), "--from-keys", writeSealKeys(t, k1), "--to", "TARGET", "--to-keys", missing},
			[]string{"--to-keys", "nothing was written"}},
		{"copy, malformed --from-keys", []string{"--from", sealFilesURL(srcDir), "--from-keys", notKeys, "--to", "TARGET"},
			[]string{"--from-keys", "not base64", "nothing was written"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dstDir := t.TempDir()
			args := append([]string{"migrate"}, c.args...)
			for i, a := range args {
				if a == "TARGET" {
					args[i] = sealFilesURL(dstDir)
				}
			}
			code, out, errOut := runCLI(t, args...)
			if code != exitFail {
				t.Errorf("exit %d, want %d\n%s\n%s", code, exitFail, out, errOut)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(errOut, base64.StdEncoding.EncodeToString(k1.Secret[:])) {
				t.Error("stderr repeats a secret")
			}
			if got := dirSnapshot(t, dstDir); len(got) != 0 {
				t.Errorf("target written: %v", got)
			}
			if after := dirSnapshot(t, srcDir); !mapsEqual(before, after) {
				t.Error("source changed")
			}
		})
	}
}

func TestMigrateSealUsage(t *testing.T) {
	dir := t.TempDir()
	kf := writeSealKeys(t, sealKey("k1", 1))
	for _, args := range [][]string{
		{"--reseal", "--to", sealFilesURL(dir)},
		{"--reseal", "--to-keys", kf},
		{"--reseal", "--from", sealFilesURL(dir), "--to", sealFilesURL(dir), "--to-keys", kf},
		{"--reseal", "--to", sealFilesURL(dir), "--to-keys", kf, "--dry-run"},
	} {
		code, _, errOut := runCLI(t, append([]string{"migrate"}, args...)...)
		if code != exitUsage || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("migrate %v: exit %d, stderr %q; want 2 and one line", args, code, errOut)
		}
	}
	code, _, errOut := runCLI(t, "migrate", "--from", sealFilesURL(dir), "--to", sealFilesURL(t.TempDir()), "--to-compress-over", "lots")
	if code != exitFail || !strings.Contains(errOut, "--to-compress-over") {
		t.Errorf("bad --to-compress-over: exit %d, %q", code, errOut)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// wantSealStats checks "name: N" lines of migrate's summary.
func wantSealStats(t *testing.T, out string, kv ...any) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		name, want := kv[i].(string), kv[i+1].(int)
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `[^:\n]*: (\d+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("summary has no %q line:\n%s", name, out)
			continue
		}
		if got, _ := strconv.Atoi(m[1]); got != want {
			t.Errorf("%s = %d, want %d\n%s", name, got, want, out)
		}
	}
}
